#pragma once
// Optimizer steps and gradient clipping on CUDA tensors (declared in every build;
// engine/cuda/without_cuda_optim.cpp holds the stand-ins). Adam/AdamW use gpu::adam_update
// of engine/cuda/ops.h. Tensors contiguous, f32 or f64, on one CUDA device.
#include <vector>

#include "engine/tensor.h"
#include "kernels/cpu/optim.h"

namespace shallow::gpu {

// The fused step of cpu::sgd_update, in place; momentum_buffer may be undefined when
// h.momentum == 0.
void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, bool first_step,
                const cpu::SgdHyper& h, const char* name);

// Per tensor, sum |x|^p (p finite) or max |x| (p infinite), in double, as cpu::sum_abs_pow and
// cpu::max_abs. The tensors may be on different CUDA devices; each device's results come back
// to the host in one copy.
std::vector<double> abs_pow_sums(const std::vector<Tensor>& xs, double p, const char* name);

// x *= s (s rounded to x's dtype first), in place.
void scale_inplace(Tensor& x, double s, const char* name);

}  // namespace shallow::gpu
