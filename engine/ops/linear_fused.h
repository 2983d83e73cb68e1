#pragma once
// linear and linear_act for inference (f32/f64 on the CPU; f32, f64, bf16 on CUDA), and linear
// with a bias for training on the CPU: the bias and the activation are applied by the gemm's
// epilogue as each tile of the output is finished, instead of in extra passes over the whole
// output. Internal to engine/ops (linalg.cpp hands over to it).
#include "engine/ops/linalg.h"

namespace shallow {

// Training on the CPU in f32/f64 with a bias: the same fused forward, recorded as one "linear"
// node whose backward makes the three gradients (x, weight in its own [out, in] layout, bias).
// Saves the pass that adds the bias to the output and the output it writes.
bool fused_linear_trains(const Tensor& x, const Tensor& weight, const Tensor& bias);
Tensor fused_linear_with_grad(const Tensor& x, const Tensor& weight, const Tensor& bias);

// Whether the fused path takes these operands (bias may be undefined): no gradient to record,
// all on one device, x and weight (and bias) of one dtype, f32 or f64 (or bf16 on CUDA).
bool fused_linear_applies(const Tensor& x, const Tensor& weight, const Tensor& bias);

// y = act(x W^T + b); shapes checked here, operands as fused_linear_applies takes them.
Tensor fused_linear(const Tensor& x, const Tensor& weight, const Tensor& bias, LinearAct act);

}  // namespace shallow
