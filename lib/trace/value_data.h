// A recorded value's elements as numbers, decoded from the trace's raw
// little-endian bytes with no libtorch (docs/trace-format.md, `values`).
#pragma once

#include <string>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

// The elements in row-major order, as doubles; a complex element gives two
// (real, then imaginary). float16 and bfloat16 are widened exactly. False
// for an unknown dtype or bytes that do not hold `numel` elements (the
// reader has checked both, so false means a value built by hand).
bool ValueElements(const Value& value, std::vector<double>* out);

}  // namespace cautograd
