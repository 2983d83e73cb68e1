#pragma once
// Random fills on device arrays from Philox4x32-10 (kernels/cpu/philox.h): element i draws from
// counter offset + i, as engine/random.cpp does on the CPU, so the same generator state gives
// the same numbers on both (uniform bit for bit; normal up to the device's log and cos).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

enum class Distribution {
  uniform,  // low + (high - low) * u, u in [0, 1) from 53 bits
  normal,   // Box-Muller on two uniforms of one counter: N(0, 1) (low and high unused)
};

// out[i] = one draw of `dist` for i in [0, n), computed in double and rounded to T.
template <class T>
Status random_fill(int64_t n, T* out, Distribution dist, double low, double high, uint64_t seed,
                   uint64_t offset, cudaStream_t stream);

}  // namespace shallow::cuda
