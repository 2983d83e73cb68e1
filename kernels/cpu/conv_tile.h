#pragma once
// The register tile under the direct convolution paths (conv_columns.cpp, conv_rows.cpp):
//   C[rows, cols] (=, or +=) sum over b < nb, k < K of A_b(i, k) * B_b(k, j)
// with A read in place through strides (one broadcast per element, so it needs no packing)
// and B read as rows contiguous in j. A convolution's operands are already such matrices:
// an image whose rows are the column matrix, a row of input read at K successive offsets
// (ldb = 1, the taps of a 1-D kernel), a weight seen transposed. Reading them where they lie
// replaces the im2col copy and the GEMM's packing, which cost as much as the arithmetic
// at the EEG encoders' shapes (36-wide rows, 25 taps). Internal to the conv kernels.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/conv_simd.h"

namespace shallow::cpu::conv_tile {

template <class T>
struct Operands {
  const T* a = nullptr;  // A_b(i, k) = a[b * a_bs + i * a_rs + k * a_ks]
  int64_t a_rs = 0, a_ks = 0, a_bs = 0;
  const T* b = nullptr;  // B_b(k, j) = b[b * b_bs + k * ldb + j]
  int64_t ldb = 0, b_bs = 0;
  int64_t K = 0, nb = 1;
};

// Where the sum starts: zero, a value per row of C (a bias), or C's current contents.
enum class Start { zero, row_bias, accumulate };

// One tile of at most MR rows and NV vectors of columns; the accumulators stay in registers
// over the whole (b, k) loop. Rows past `rows` repeat the last row (their sums are dropped),
// so that the row loop stays unrolled. Without kHalfTail the last of the NV vectors is
// masked to `cols`; with it, NV - 1 full vectors are followed by a half-width one, masked.
template <class T, int MR, int NV, bool kHalfTail>
void tile(const Operands<T>& op, int64_t rows, int64_t cols, T* c, int64_t ldc, Start start,
          const T* row_bias) {
  using S = conv_simd::Simd<T>;
  using V = typename S::V;
  using H = typename S::H;
  constexpr int NF = kHalfTail ? NV - 1 : NV;  // full-width vectors
  constexpr int NA = NF > 0 ? NF : 1;          // (arrays need a size of at least 1)
  const typename S::Mask last = S::first(kHalfTail ? S::L : cols - int64_t(S::L) * (NV - 1));
  const typename S::HMask half_last = S::hfirst(cols - int64_t(S::L) * NF);
  auto mask_of = [&](int v) { return v == NV - 1 ? last : S::first(S::L); };

  V acc[MR][NA];
  H acc_half[MR];
  int64_t a_off[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const int64_t r = std::min<int64_t>(i, rows - 1);
    a_off[i] = r * op.a_rs;
    const T init = start == Start::row_bias ? row_bias[r] : T(0);
    const bool load = start == Start::accumulate;
#pragma GCC unroll 4
    for (int v = 0; v < NF; ++v)
      acc[i][v] = load ? S::load(c + r * ldc + v * S::L, mask_of(v)) : S::set1(init);
    if constexpr (kHalfTail)
      acc_half[i] = load ? S::hload(c + r * ldc + NF * S::L, half_last) : S::hset1(init);
  }
  for (int64_t bb = 0; bb < op.nb; ++bb) {
    const T* ak = op.a + bb * op.a_bs;
    const T* bk = op.b + bb * op.b_bs;
    for (int64_t k = 0; k < op.K; ++k, ak += op.a_ks, bk += op.ldb) {
      V bv[NA];
      H bh;
#pragma GCC unroll 4
      for (int v = 0; v < NF; ++v)
        bv[v] = v == NF - 1 && !kHalfTail ? S::load(bk + v * S::L, last) : S::load(bk + v * S::L);
      if constexpr (kHalfTail) bh = S::hload(bk + NF * S::L, half_last);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const V ai = S::set1(ak[a_off[i]]);
#pragma GCC unroll 4
        for (int v = 0; v < NF; ++v) acc[i][v] = S::fma(ai, bv[v], acc[i][v]);
        if constexpr (kHalfTail) acc_half[i] = S::hfma(S::half(ai), bh, acc_half[i]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= rows) break;
#pragma GCC unroll 4
    for (int v = 0; v < NF; ++v) S::store(c + i * ldc + v * S::L, acc[i][v], mask_of(v));
    if constexpr (kHalfTail) S::hstore(c + i * ldc + NF * S::L, acc_half[i], half_last);
  }
}

// Runs the tile with nv (<= NV) vectors, the last one half-width if `half`.
template <class T, int MR, int NV>
void tile_with(int64_t nv, bool half, const Operands<T>& op, int64_t rows, int64_t cols, T* c,
               int64_t ldc, Start start, const T* row_bias) {
  if (nv == NV) {
    if (half)
      tile<T, MR, NV, true>(op, rows, cols, c, ldc, start, row_bias);
    else
      tile<T, MR, NV, false>(op, rows, cols, c, ldc, start, row_bias);
  } else if constexpr (NV > 1) {
    tile_with<T, MR, NV - 1>(nv, half, op, rows, cols, c, ldc, start, row_bias);
  }
}

// C[M, N] over tiles of MR rows and up to NV vectors of columns, on the calling thread (the
// callers split the work above). Column blocks outside, row blocks inside: a block of B is
// read by every row block while it is in cache. `kc` > 0 cuts a long K (with nb == 1) into
// chunks summed into C in turn, so that the chunk of B stays in cache across the row blocks.
template <class T, int MR, int NV>
void tiles(const Operands<T>& op, int64_t M, int64_t N, T* c, int64_t ldc, Start start,
           const T* row_bias, int64_t kc = 0) {
  using S = conv_simd::Simd<T>;
  static_assert(NV >= 1 && NV <= 4, "tiles: 1 to 4 vectors of columns");
  constexpr int64_t block = int64_t(NV) * S::L;
  if (kc > 0 && op.nb == 1 && op.K > kc) {
    for (int64_t k0 = 0; k0 < op.K; k0 += kc) {
      Operands<T> part = op;
      part.K = std::min(kc, op.K - k0);
      part.a += k0 * op.a_ks;
      part.b += k0 * op.ldb;
      tiles<T, MR, NV>(part, M, N, c, ldc, k0 == 0 ? start : Start::accumulate, row_bias, 0);
    }
    return;
  }
  for (int64_t j0 = 0; j0 < N; j0 += block) {
    const int64_t cols = std::min(block, N - j0);
    const int64_t nv = (cols + S::L - 1) / S::L;
    // A tail of at most half a vector takes a half-width one.
    const bool half = cols - S::L * (nv - 1) <= S::LH;
    for (int64_t i0 = 0; i0 < M; i0 += MR) {
      Operands<T> sub = op;
      sub.a += i0 * op.a_rs;
      sub.b += j0;
      tile_with<T, MR, NV>(nv, half, sub, std::min<int64_t>(MR, M - i0), cols, c + i0 * ldc + j0,
                           ldc, start, row_bias ? row_bias + i0 : nullptr);
    }
  }
}

}  // namespace shallow::cpu::conv_tile
