// How close two recorded values must be to count as equal: the one rule that
// `replay --check` and `diff` share, so a value replay accepts is one diff
// accepts. No libtorch.
#pragma once

#include <string>

namespace cautograd {

struct Tolerance {
  double rtol = 0, atol = 0;
};

// torch.testing's defaults: float32 1.3e-6/1e-5, float64 1e-7/1e-7,
// float16 1e-3/1e-5, bfloat16 1.6e-2/1e-5; integers and bool exact.
Tolerance DefaultTolerance(const std::string& dtype);

// The tolerance for `dtype` with a user's overrides: rtol/atol < 0 keep the
// default. Integers and bool stay exact whatever the overrides say: an index
// that is off by one is wrong, not close.
Tolerance ResolveTolerance(const std::string& dtype, double rtol, double atol);

// |got - want| <= atol + rtol * |want|, where NaN matches NaN and an
// infinity matches the same infinity.
bool WithinTolerance(double got, double want, const Tolerance& tolerance);

}  // namespace cautograd
