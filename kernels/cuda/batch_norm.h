#pragma once
// Batch norm on CUDA, the twin of the batch_norm_* kernels of kernels/cpu/norm.h: channels of
// a contiguous [N, C, S] device array (S = the product of the spatial dims). Sums are taken in
// double, as on the CPU, and with the CPU's arithmetic around them. A channel's N * S values
// are split across several blocks (the EEG encoders have few channels of millions of values),
// whose partial sums are added in a fixed order: results do not depend on timing. Weight and
// bias pointers may be null (no affine).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

// Device scratch that batch_norm_stats and batch_norm_backward need (any cudaMalloc'd block).
// It depends on the current device's number of multiprocessors: ask on the device that runs
// the call.
size_t batch_norm_scratch_bytes(int64_t N, int64_t C, int64_t S);

// Per channel: mean and biased variance over the N * S values (two passes).
template <class T>
Status batch_norm_stats(int64_t N, int64_t C, int64_t S, const T* x, T* mean, T* var,
                        void* scratch, size_t scratch_bytes, cudaStream_t stream);

// y = (x - mean[c]) * invstd[c] * weight[c] + bias[c].
template <class T>
Status batch_norm_apply(int64_t N, int64_t C, int64_t S, const T* x, const T* mean,
                        const T* invstd, const T* weight, const T* bias, T* y,
                        cudaStream_t stream);

// Gradients of batch_norm_apply; with `batch_stats` (training) gx includes the terms that flow
// through the batch mean and variance. gx, gweight, gbias may be null.
template <class T>
Status batch_norm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* mean,
                           const T* invstd, const T* weight, const T* gy, bool batch_stats, T* gx,
                           T* gweight, T* gbias, void* scratch, size_t scratch_bytes,
                           cudaStream_t stream);

}  // namespace shallow::cuda
