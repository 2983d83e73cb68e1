#pragma once
// Small helpers shared by the op files.
#include "engine/autograd.h"
#include "engine/tensor.h"

namespace shallow {

// The CPU kernels compute in f32 and f64. A bf16/f16 tensor is converted to f32 for the op and
// the result back (both conversions recorded, so gradients flow).
inline DType compute_dtype(DType t) { return is_half(t) ? DType::f32 : t; }

// Ops on the inference hot path of bf16 models (layer norm, elementwise binary) have CPU kernels
// that read and write bf16/f16 themselves and compute in f32 as the conversions would, with the
// same result and without the two extra passes; they take them where nothing is recorded.
inline bool cpu_half_inference(const Tensor& x, std::initializer_list<const Tensor*> inputs) {
  return is_half(x.dtype()) && x.device().is_cpu() && !needs_record(inputs);
}

// Ops whose CUDA forward kernels take bf16/f16 directly run them in place of the conversions
// when the tensors are on a CUDA device and nothing is recorded for autograd (inference).
inline bool native_half_forward(const Tensor& x, std::initializer_list<const Tensor*> inputs) {
  return is_half(x.dtype()) && x.device().is_cuda() && !needs_record(inputs);
}

inline void check_float(const Tensor& t, const char* op) {
  SH_CHECK(is_floating(t.dtype()), op, ": expected a floating-point tensor, got ",
           dtype_name(t.dtype()), " of shape ", shape_str(t.shape()));
}

inline void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  SH_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ, ", dtype_name(a.dtype()), " ",
           shape_str(a.shape()), " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
}

inline void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  SH_CHECK(a.device() == b.device(), op, ": devices differ, ", a.device().str(), " vs ",
           b.device().str());
}

}  // namespace shallow
