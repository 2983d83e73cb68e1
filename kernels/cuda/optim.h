#pragma once
// Fused Adam/AdamW update on device arrays: the CUDA twin of cpu::adam_update
// (kernels/cpu/optim.h), with the same operations in the same order, one thread per element.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/optim.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

using cpu::AdamHyper;

template <class T>
Status adam_update(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq,
                   T* max_exp_avg_sq, const AdamHyper& h, cudaStream_t stream);

}  // namespace shallow::cuda
