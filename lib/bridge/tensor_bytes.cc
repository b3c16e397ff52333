#include "lib/bridge/tensor_bytes.h"

#include <cstring>

#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/zeros.h>
#include <ATen/record_function.h>

namespace cautograd {

std::string TensorBytes(const at::Tensor& t) {
  at::Tensor src = t;
  bool plain =
      t.device().is_cpu() && t.layout() == at::kStrided && !t.is_neg() && !t.is_conj() && !t._is_zerotensor();
  if (!plain) {
    at::DisableRecordFunctionGuard no_record;
    at::NoGradGuard no_grad;
    if (t._is_zerotensor())
      src = at::zeros(t.sizes(), t.options().device(at::kCPU));
    else if (t.layout() != at::kStrided)
      src = t.to_dense().to(at::kCPU).contiguous();  // sparse, mkldnn: their dense equivalent
    else
      src = t.resolve_conj().resolve_neg().to(at::kCPU).contiguous();
  }
  const int64_t elem = int64_t(src.element_size());
  const int64_t numel = src.numel();
  std::string bytes(size_t(numel * elem), '\0');
  if (numel == 0) return bytes;
  if (src.is_contiguous()) {
    std::memcpy(&bytes[0], src.data_ptr(), bytes.size());
    return bytes;
  }
  // A view (a transpose, a slice): libtorch's copy kernel lays it out
  // row-major straight into the bytes, vectorized, in one pass.
  at::DisableRecordFunctionGuard no_record;
  at::NoGradGuard no_grad;
  at::Tensor dst = at::from_blob(&bytes[0], src.sizes(), at::TensorOptions().dtype(src.scalar_type()));
  dst.copy_(src);
  return bytes;
}

at::Tensor TensorFromBytes(const std::string& bytes, const std::vector<int64_t>& shape,
                           c10::ScalarType dtype) {
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

}  // namespace cautograd
