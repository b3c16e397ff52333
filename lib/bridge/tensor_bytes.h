// Tensor values as the trace stores them: elements in row-major order of
// the tensor's shape, raw little-endian bytes.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace cautograd {

// Copies a tensor's elements out. CPU strided tensors are read in place
// without dispatching any op; others are first brought to a plain CPU
// tensor with record functions disabled.
std::string TensorBytes(const at::Tensor& t);

// A new contiguous CPU tensor holding `bytes`; the caller has checked that
// bytes.size() == numel(shape) * element size.
at::Tensor TensorFromBytes(const std::string& bytes, const std::vector<int64_t>& shape,
                           c10::ScalarType dtype);

}  // namespace cautograd
