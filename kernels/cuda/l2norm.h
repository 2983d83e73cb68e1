#pragma once
// L2 normalization on device arrays: the CUDA twin of the l2_normalize part of
// kernels/cpu/norm.h. The array is [outer, n, inner], normalized along n; sums are taken in
// double, as on the CPU.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

// y = x / max(||x||_2, eps) along n; norm ([outer, inner]) is saved for the backward.
template <class T>
Status l2_normalize(int64_t outer, int64_t n, int64_t inner, const T* x, double eps, T* y, T* norm,
                    cudaStream_t stream);

// gx = (gy - y <gy, y>) / norm where norm > eps, else gy / eps.
template <class T>
Status l2_normalize_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* norm,
                             double eps, const T* gy, T* gx, cudaStream_t stream);

}  // namespace shallow::cuda
