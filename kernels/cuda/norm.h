#pragma once
// Layer norm over contiguous rows on the device: the CUDA twin of the layer-norm part of
// kernels/cpu/norm.h. Weight and bias pointers may be null (no affine).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/half.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

// x is [rows, n]; y = (x - mean) * rstd * weight + bias per row; mean and rstd ([rows]) are
// saved for the backward. Statistics are summed in double, as on the CPU. T is float or double
// with S = T, or bf16/f16 (computed in float, rounded once) with S = float.
template <class T, class S = T>
Status layer_norm(int64_t rows, int64_t n, const T* x, const T* weight, const T* bias, double eps,
                  T* y, S* mean, S* rstd, cudaStream_t stream);

// gx (may be null), and gweight/gbias ([n], may be null) from gy. Every sum is taken in a fixed
// order, so results do not vary from run to run.
template <class T>
Status layer_norm_backward(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd,
                           const T* weight, const T* gy, T* gx, T* gweight, T* gbias,
                           cudaStream_t stream);

}  // namespace shallow::cuda
