#pragma once
// bf16 matmul and linear on the CPU for inference: both operands bf16, products summed in f32
// by kernels/cpu/gemm_bf16 and the result rounded once to bf16, as PyTorch does. Where a
// gradient is to be recorded, matmul and linear keep their general path (computed in f32).
#include <initializer_list>

#include "engine/tensor.h"
#include "kernels/cpu/gemm.h"

namespace shallow {

// Whether the bf16 kernel takes these operands (bias may be undefined): every defined one bf16
// on the CPU, and no gradient to record.
bool bf16_gemm_applies(std::initializer_list<const Tensor*> operands);

// matmul and linear as declared in engine/ops/linalg.h, for operands bf16_gemm_applies takes.
// Arguments are checked by the callers (matmul, linear) before they hand over.
Tensor matmul_bf16(const Tensor& a, const Tensor& b);
// linear_bf16 also applies `act` to the f32 sums before rounding (linear_act's bf16 path).
Tensor linear_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias,
                   cpu::GemmActivation act = cpu::GemmActivation::none);

}  // namespace shallow
