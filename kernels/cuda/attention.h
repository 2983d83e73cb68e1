#pragma once
// Fused scaled dot-product attention on the device, forward and backward: the CUDA twin of
// kernels/cpu/attention.h for the cases without a mask (causal or not) and with one head dim
// for queries, keys and values (D <= kMaxHeadDim). The Lq x Lk score matrix never exists:
//
//   forward   a block per (batch entry, 64 query rows); 64-key tiles of K and V stream
//             through shared memory; each row keeps a running max and sum (online softmax)
//             and its log-sum-exp is saved for the backward.
//   backward  flash-attention-2 style, two deterministic passes that recompute the
//             probabilities from the saved log-sum-exp: a block per key tile makes dK and dV,
//             a block per query tile makes dQ. No atomics.
//
// float runs on plain FMA (SIMT) tiles; bf16 runs on tensor cores (mma.sync m16n8k16, f32
// accumulators) on sm_80 and newer, except the backward for head dims above 64, which runs on
// the SIMT tiles in f32 (the tensor-core version would spill its accumulators).
// SHALLOW_CUDA_ATTENTION=simt in the environment runs bf16 on the SIMT tiles everywhere.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/half.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

constexpr int64_t kMaxHeadDim = 128;

// Where batch entry b of an operand starts: the batch is read as [outer, inner] with
// b = o * inner_count + i, at offset o * outer_stride + i * inner_stride elements (strides
// may be 0: an operand broadcast over batch entries). Covers [B, H, L, D] tensors and their
// head-interleaved views ([B, L, H, D] transposed) without copies.
struct BatchLayout {
  int64_t inner_count = 1;
  int64_t outer_stride = 0, inner_stride = 0;
  __host__ __device__ int64_t offset(int64_t b) const {
    return (b / inner_count) * outer_stride + (b % inner_count) * inner_stride;
  }
};

// Row i of an operand in batch entry b starts at data + layout.offset(b) + i * ld; the D
// elements of a row are contiguous.
template <class T>
struct AttentionOperand {
  const T* data = nullptr;
  BatchLayout layout;
  int64_t ld = 0;
};

template <class T>
struct FusedAttentionArgs {
  int64_t batch = 0, Lq = 0, Lk = 0;
  int D = 0;                 // head dim of q, k and v, 1..kMaxHeadDim
  float scale = 1;
  bool causal = false;       // row i attends keys j <= i (top-left aligned)
  AttentionOperand<T> q, k, v;
};

// out: contiguous [batch, Lq, D]; lse: [batch, Lq] in f32, natural log of each row's softmax
// denominator (scaled scores). A row that attends nothing (Lk == 0) gets zeros and lse = +inf.
template <class T>
Status fused_attention_forward(const FusedAttentionArgs<T>& a, T* out, float* lse,
                               cudaStream_t stream);

// From out, lse and grad_out (contiguous [batch, Lq, D]) writes contiguous gq [batch, Lq, D],
// gk and gv [batch, Lk, D]; a null gradient pointer skips it. row_dot is scratch of
// batch * Lq floats (it receives D_i = dO_i . O_i).
template <class T>
Status fused_attention_backward(const FusedAttentionArgs<T>& a, const T* out, const float* lse,
                                const T* grad_out, float* row_dot, T* gq, T* gk, T* gv,
                                cudaStream_t stream);

}  // namespace shallow::cuda
