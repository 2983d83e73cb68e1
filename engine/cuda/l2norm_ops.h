#pragma once
// L2 normalization on CUDA tensors (declared in every build; engine/cuda/without_cuda_l2norm.cpp
// holds the stand-ins). Contiguous f32/f64 tensors on one CUDA device, seen as [outer, n, inner].
#include "engine/tensor.h"

namespace shallow::gpu {

void l2_normalize(int64_t outer, int64_t n, int64_t inner, const Tensor& x, double eps, Tensor& y,
                  Tensor& norm, const char* name);
void l2_normalize_backward(int64_t outer, int64_t n, int64_t inner, const Tensor& y,
                           const Tensor& norm, double eps, const Tensor& gy, Tensor& gx,
                           const char* name);

}  // namespace shallow::gpu
