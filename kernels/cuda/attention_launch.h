#pragma once
// The launchers behind kernels/cuda/attention.h, one per kernel family; attention.cu picks
// among them. Each takes a problem the entry point has already checked (batch, Lq > 0,
// 1 <= D <= kMaxHeadDim).
#include "kernels/cuda/attention.h"

namespace shallow::cuda::attention_detail {

// row_dot[r] = grad_out_r . out_r over contiguous rows of D (the backward's D_i), in f32.
template <class T>
Status row_dots(int64_t rows, int D, const T* out, const T* grad_out, float* row_dot,
                cudaStream_t stream);

// Plain FMA tiles in f32 shared memory (attention_simt.cu); T is float or bf16.
template <class T>
Status forward_simt(const FusedAttentionArgs<T>& a, T* out, float* lse, cudaStream_t stream);
template <class T>
Status backward_simt(const FusedAttentionArgs<T>& a, const T* out, const float* lse,
                     const T* grad_out, float* row_dot, T* gq, T* gk, T* gv, cudaStream_t stream);

// f32 forward on tensor cores, each product as three TF32 products (attention_tf32.cu); sm_80 and
// newer, for operands whose rows are 16-byte aligned with D a multiple of 4 and at most
// kTf32MaxD (can_forward_tf32).
constexpr int kTf32MaxD = 64;
bool can_forward_tf32(const FusedAttentionArgs<float>& a, const float* out);
Status forward_tf32(const FusedAttentionArgs<float>& a, float* out, float* lse,
                    cudaStream_t stream);
// The f32 backward's two passes the same way (attention_tf32_backward.cu), for aligned
// operands and gradients with D a multiple of 4 and at most kTf32MaxD (can_backward_tf32).
bool can_backward_tf32(const FusedAttentionArgs<float>& a, const float* grad_out,
                       const float* gq, const float* gk, const float* gv);
Status backward_tf32(const FusedAttentionArgs<float>& a, const float* out, const float* lse,
                     const float* grad_out, float* row_dot, float* gq, float* gk, float* gv,
                     cudaStream_t stream);

// Tensor cores, bf16 operands and f32 accumulators (attention_mma.cu); sm_80 and newer.
Status forward_mma(const FusedAttentionArgs<cpu::bf16>& a, cpu::bf16* out, float* lse,
                   cudaStream_t stream);
// The same on double-buffered cp.async tiles read with ldmatrix (attention_mma_pipelined.cu),
// for operands whose rows are 16-byte aligned with D a multiple of 8 (can_forward_mma_pipelined).
// slices_per_warp: 16-row slices of queries per warp, 1 (blocks of 64 rows) or 2 (blocks of
// 128, for D <= 64; larger D runs with 1).
bool can_forward_mma_pipelined(const FusedAttentionArgs<cpu::bf16>& a, const cpu::bf16* out);
Status forward_mma_pipelined(const FusedAttentionArgs<cpu::bf16>& a, cpu::bf16* out, float* lse,
                             cudaStream_t stream, int slices_per_warp);
// The backward's two passes on tensor cores (attention_mma_backward.cu), for D <= kMmaBackwardMaxD
// (larger head dims would spill the dK and dV accumulators out of registers).
constexpr int kMmaBackwardMaxD = 64;
Status backward_mma(const FusedAttentionArgs<cpu::bf16>& a, const cpu::bf16* out, const float* lse,
                    const cpu::bf16* grad_out, float* row_dot, cpu::bf16* gq, cpu::bf16* gk,
                    cpu::bf16* gv, cudaStream_t stream);
// The same passes on double-buffered cp.async tiles read with ldmatrix
// (attention_mma_backward_pipelined.cu), for 16-byte aligned operands and gradients with D a
// multiple of 8 and at most kMmaPipelinedBackwardMaxD (can_backward_mma_pipelined).
constexpr int kMmaPipelinedBackwardMaxD = 128;
bool can_backward_mma_pipelined(const FusedAttentionArgs<cpu::bf16>& a, const cpu::bf16* grad_out,
                                const cpu::bf16* gq, const cpu::bf16* gk, const cpu::bf16* gv);
Status backward_mma_pipelined(const FusedAttentionArgs<cpu::bf16>& a, const cpu::bf16* out,
                              const float* lse, const cpu::bf16* grad_out, float* row_dot,
                              cpu::bf16* gq, cpu::bf16* gk, cpu::bf16* gv, cudaStream_t stream);

}  // namespace shallow::cuda::attention_detail
