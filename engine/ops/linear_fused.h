#pragma once
// linear and linear_act for inference on the CPU in f32/f64: the bias and the activation are
// applied by the gemm's epilogue as each tile of the output is finished, instead of in extra
// passes over the whole output. Internal to engine/ops (linalg.cpp hands over to it).
#include "engine/ops/linalg.h"

namespace shallow {

// Whether the fused path takes these operands (bias may be undefined): no gradient to record,
// all on the CPU, x and weight (and bias) of one dtype, f32 or f64.
bool fused_linear_applies(const Tensor& x, const Tensor& weight, const Tensor& bias);

// y = act(x W^T + b); shapes checked here, operands as fused_linear_applies takes them.
Tensor fused_linear(const Tensor& x, const Tensor& weight, const Tensor& bias, LinearAct act);

}  // namespace shallow
