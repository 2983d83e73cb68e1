#pragma once
// Fused scaled dot-product attention, forward and backward, on a batch of independent
// problems: out_b = softmax(scale * q_b k_b^T + mask_b) v_b.
//
// The kernels walk tiles of query rows against tiles of keys with an online softmax, so the
// Lq x Lk score matrix never exists in full: the forward keeps each row's running maximum and
// sum and saves the log-sum-exp; the backward recomputes the probabilities tile by tile from it.
// float runs on AVX-512 tile products where the build targets AVX-512 (attention_f32.cpp);
// double, and float elsewhere, on the gemm (attention.cpp).
#include <cstdint>

namespace shallow::cpu {

// An optional mask; at most one of `additive` and `keep` is set. Element (i, j) of batch entry
// b lies at offset[b] + i * row_stride + j * col_stride (strides may be 0: broadcasting).
template <class T>
struct AttentionMask {
  const T* additive = nullptr;     // added to the scaled scores (-inf masks out)
  const uint8_t* keep = nullptr;   // 1 = attend, 0 = masked out
  const int64_t* offset = nullptr;
  int64_t row_stride = 0, col_stride = 0;
};

// Row i of operand X in batch entry b starts at X + X_offset[b] + i * X_ld; the elements of a
// row are contiguous. Offsets may repeat (an operand broadcast over batch entries).
template <class T>
struct AttentionArgs {
  int64_t batch = 0, Lq = 0, Lk = 0, E = 0, Ev = 0;
  T scale = 1;
  bool causal = false;  // row i attends keys j <= i (top-left aligned, as PyTorch's is_causal)
  const T* q = nullptr;
  const int64_t* q_offset = nullptr;
  int64_t q_ld = 0;
  const T* k = nullptr;
  const int64_t* k_offset = nullptr;
  int64_t k_ld = 0;
  const T* v = nullptr;
  const int64_t* v_offset = nullptr;
  int64_t v_ld = 0;
  AttentionMask<T> mask;
};

// out: contiguous [batch, Lq, Ev]; lse: [batch, Lq], the log of each row's softmax
// denominator (scores included). A row that attends nothing gets zeros and lse = +inf.
template <class T>
void attention_forward(const AttentionArgs<T>& a, T* out, T* lse);

// From out, lse and grad_out ([batch, Lq, Ev]) writes the gradients of every batch entry,
// contiguous: gq [batch, Lq, E], gk [batch, Lk, E], gv [batch, Lk, Ev]. A null gradient
// pointer skips that gradient. No two threads ever add into the same element: keys' gradients
// are made per key tile and queries' per query tile, in two passes, or (float, with at least
// two batch entries per thread) in one pass per batch entry, which gives the same bits.
template <class T>
void attention_backward(const AttentionArgs<T>& a, const T* out, const T* lse, const T* grad_out,
                        T* gq, T* gk, T* gv);

}  // namespace shallow::cpu
