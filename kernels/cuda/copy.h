#pragma once
// Strided copy with type conversion on one GPU, the CUDA twin of kernels/cpu/copy.h, and a
// contiguous fill. Pointers are device pointers; shapes and strides (in elements) are host arrays.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

// Most dims a strided copy takes (the engine's tensors have far fewer).
constexpr int kMaxCopyDims = 12;

// dst[idx . dst_strides] = Dst(src[idx . src_strides]) for every index of `shape`.
// Src and Dst are any of float, double, bf16, f16, int32_t, int64_t, uint8_t.
template <class Src, class Dst>
Status strided_copy(int ndim, const int64_t* shape, const Src* src, const int64_t* src_strides,
                    Dst* dst, const int64_t* dst_strides, cudaStream_t stream);

// dst[i] = value for i in [0, n).
template <class T>
Status fill(int64_t n, T* dst, T value, cudaStream_t stream);

}  // namespace shallow::cuda
