#pragma once
// Dropout on device arrays: the CUDA twin of kernels/cpu/dropout.h, with the same mask rule
// (unit u kept unless the 32-bit word u % 4 of philox(seed, offset + u / 4), made uniform, falls
// below p), so the same seed and offset give the CPU's mask exactly, and the backward
// recomputes the forward's mask by calling this again on the gradient.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

// y[u * S + j] = x[u * S + j] * (keep(u) ? 1 / (1 - p) : 0) for u in [0, units), j in [0, S).
template <class T>
Status dropout(int64_t units, int64_t S, const T* x, T* y, double p, uint64_t seed, uint64_t offset,
               cudaStream_t stream);

}  // namespace shallow::cuda
