#include "lib/trace/tolerance.h"

#include <cmath>

#include "lib/trace/trace.h"

namespace cautograd {

Tolerance DefaultTolerance(const std::string& dtype) {
  if (dtype == "float64" || dtype == "complex128") return {1e-7, 1e-7};
  if (dtype == "float16") return {1e-3, 1e-5};
  if (dtype == "bfloat16") return {1.6e-2, 1e-5};
  if (IsIntegralDtype(dtype)) return {0, 0};
  return {1.3e-6, 1e-5};
}

Tolerance ResolveTolerance(const std::string& dtype, double rtol, double atol) {
  if (IsIntegralDtype(dtype)) return Tolerance();
  Tolerance t = DefaultTolerance(dtype);
  if (rtol >= 0) t.rtol = rtol;
  if (atol >= 0) t.atol = atol;
  return t;
}

bool WithinTolerance(double got, double want, const Tolerance& tolerance) {
  if (got == want) return true;  // equal infinities too
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
  // An infinity is only close to itself (the bound below would be infinite).
  if (std::isinf(got) || std::isinf(want)) return false;
  return std::fabs(got - want) <= tolerance.atol + tolerance.rtol * std::fabs(want);
}

}  // namespace cautograd
