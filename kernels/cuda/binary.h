#pragma once
// Elementwise binary ops with broadcasting on device arrays: the CUDA twin of
// kernels/cpu/binary.h. Each operand has its own strides over the output shape (0 on a
// broadcast dim); the output is contiguous. Shapes and strides are host arrays.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/binary.h"
#include "kernels/cpu/half.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

using cpu::BinaryOp;

constexpr int kMaxBinaryDims = 12;

// float, double, bf16 and f16 (the 16-bit types computed in float, rounded once).
template <class T>
Status binary(BinaryOp op, int ndim, const int64_t* shape, const T* a, const int64_t* a_strides,
              const T* b, const int64_t* b_strides, T* out, cudaStream_t stream);

}  // namespace shallow::cuda
