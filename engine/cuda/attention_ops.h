#pragma once
// Fused scaled dot-product attention on CUDA tensors (kernels/cuda/attention.h), for
// engine/ops/attention.cpp. Declared in every build; without CUDA
// (engine/cuda/without_cuda_attention.cpp) the entry points throw, but no tensor can be on a
// CUDA device there, so they are never reached.
#include "engine/tensor.h"

namespace shallow::gpu {

// The largest head dim the fused kernels take (kernels/cuda/attention.h: kMaxHeadDim).
constexpr int64_t kFusedAttentionMaxHeadDim = 128;

// Whether the fused kernels take a case without a mask: f32 or bf16, and one head dim for
// queries, keys and values of at most kFusedAttentionMaxHeadDim. Others (masks, f64, other
// head dims) go through the unfused ops.
inline bool fused_attention_supports(DType dtype, int64_t E, int64_t Ev) {
  return (dtype == DType::f32 || dtype == DType::bf16) && E == Ev && E >= 1 &&
         E <= kFusedAttentionMaxHeadDim;
}

// An operand read in place: row i of batch entry b starts at element
// (b / inner_count) * outer_stride + (b % inner_count) * inner_stride + i * ld
// of data.raw_data(); the elements of a row are contiguous. `data` keeps the storage alive.
struct AttentionOperand {
  Tensor data;
  int64_t inner_count = 1, outer_stride = 0, inner_stride = 0, ld = 0;
};

struct FusedAttention {
  int64_t batch = 0, Lq = 0, Lk = 0, D = 0;
  double scale = 1;
  bool causal = false;
  AttentionOperand q, k, v;
};

// out: contiguous [batch, Lq, D] in the operands' dtype; lse: contiguous [batch, Lq] f32.
void fused_attention_forward(const FusedAttention& a, Tensor& out, Tensor& lse, const char* name);

// out, lse and grad_out as the forward made them (grad_out contiguous, out's shape and dtype);
// gq [batch, Lq, D], gk and gv [batch, Lk, D], contiguous, or undefined to skip one.
void fused_attention_backward(const FusedAttention& a, const Tensor& out, const Tensor& lse,
                              const Tensor& grad_out, Tensor& gq, Tensor& gk, Tensor& gv,
                              const char* name);

}  // namespace shallow::gpu
