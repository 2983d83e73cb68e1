#pragma once
// Softmax and log-softmax along the middle axis of a contiguous [outer, n, inner] device block:
// the CUDA twin of kernels/cpu/softmax.h. The row statistics (max and sum of exp) are found in
// one online pass: the running sum is rescaled whenever the running max grows.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

template <class T>
Status softmax(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log,
               cudaStream_t stream);

//   softmax:      gx = y * (gy - sum(gy * y))
//   log_softmax:  gx = gy - exp(y) * sum(gy)
template <class T>
Status softmax_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* gy, T* gx,
                        bool log, cudaStream_t stream);

}  // namespace shallow::cuda
