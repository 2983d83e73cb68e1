#pragma once
// Elementwise unary ops and their derivatives on contiguous device arrays: the CUDA twin of
// kernels/cpu/unary.h (same ops, same parameters, same formulas).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/half.h"
#include "kernels/cpu/unary.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

using cpu::UnaryOp;
using cpu::UnaryParams;

// Forward: float, double, bf16 and f16 (the 16-bit types computed in float, rounded once).
// Backward: float and double.
template <class T>
Status unary(UnaryOp op, int64_t n, const T* x, T* y, UnaryParams p, cudaStream_t stream);

// gx = gy * f'(x); y = f(x) is given too.
template <class T>
Status unary_backward(UnaryOp op, int64_t n, const T* x, const T* y, const T* gy, T* gx,
                      UnaryParams p, cudaStream_t stream);

}  // namespace shallow::cuda
