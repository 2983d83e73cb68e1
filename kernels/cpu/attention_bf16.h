#pragma once
// Attention forward on bf16 operands for inference (attention_bf16.cpp): the products on
// vdpbf16ps with f32 sums, so that a bf16 model's attention neither converts q, k and v to f32
// nor runs at f32 speed. q k^T is summed over E in pairs of bf16; the probabilities, computed
// in f32 with the online softmax of the f32 kernel, are rounded to bf16 for their product with
// v (as the bf16 GEMM rounds its operands); the output is the f32 sum rounded once.
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/half.h"

namespace shallow::cpu {

// Whether attention_forward_bf16 runs here: built with AVX512_BF16 and the CPU has it.
bool attention_bf16_available();

// out [batch, Lq, Ev] = softmax(scale q k^T) v for the operands placed as `a` places them (its
// scale and mask unused: no mask; `causal` honoured). E must be even. No log-sum-exp: there is
// no backward. Callable only where attention_bf16_available().
void attention_forward_bf16(const AttentionArgs<bf16>& a, float scale, bf16* out);

}  // namespace shallow::cpu
