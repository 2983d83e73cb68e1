#pragma once
// Fused SGD update on device arrays: the CUDA twin of cpu::sgd_update (kernels/cpu/optim.h),
// the same operations in the same order, one thread per element.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/optim.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

using cpu::SgdHyper;

// momentum_buffer may be null when h.momentum == 0.
template <class T>
Status sgd_update(int64_t n, T* param, const T* grad, T* momentum_buffer, bool first_step,
                  const SgdHyper& h, cudaStream_t stream);

}  // namespace shallow::cuda
