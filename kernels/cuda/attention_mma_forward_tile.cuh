#pragma once
// The arithmetic of the pipelined bf16 attention forward, shared by its two schedules (a block
// per query tile, attention_mma_pipelined.cu; persistent blocks walking many query tiles,
// attention_mma_persistent.cu): one warp's R slices of 16 query rows against one tile of 64
// keys held in shared memory (rows of LD = DP + 8 elements), with the online softmax between
// the two products, and the rows' final normalisation and store. Device code only.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_mma.cuh"

namespace shallow::cuda::attention_detail {

// Blocks per SM the register bound of a forward kernel asks for: R = 2 holds twice the
// accumulators (about 200 registers at DP = 64), so 2 blocks; R = 1 fits 4, 3 and 2 blocks at
// DP = 32, 64 and 128 without spilling.
template <int DP, int R>
constexpr int kForwardMinBlocks = R == 2 ? 2 : DP >= 128 ? 2 : DP >= 64 ? 3 : 4;

// What a warp carries across the key tiles of its rows. Slice r holds rows
// rows[r][0] = first + 16 r + g and rows[r][1] = rows[r][0] + 8 (g = lane / 4).
template <int DP, int R>
struct ForwardRows {
  int64_t rows[R][2];
  float m[R][2];          // running maximum of the scaled scores (base 2)
  float l[R][2];          // this thread's part of the running sum of exponentials
  float o[R][DP / 8][4];  // unnormalised output accumulators
  uint32_t qf[R][DP / 16][4];  // the rows of Q as A fragments, loaded once per query tile

  __device__ void start(int64_t first_row) {
    const int g = (threadIdx.x & 31) >> 2;
    const float inf = __int_as_float(0x7f800000);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      rows[r][0] = first_row + 16 * r + g;
      rows[r][1] = rows[r][0] + 8;
      m[r][0] = m[r][1] = -inf;
      l[r][0] = l[r][1] = 0.f;
#pragma unroll
      for (int n = 0; n < DP / 8; ++n) o[r][n][0] = o[r][n][1] = o[r][n][2] = o[r][n][3] = 0.f;
    }
  }

  // Q's fragments from rows [row0, row0 + 16 R) of the shared tile Qs.
  template <int LD>
  __device__ void load_q(const uint16_t* Qs, int row0) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int kk = 0; kk < DP / 16; ++kk) load_a(qf[r][kk], Qs, LD, row0 + 16 * r, kk * 16);
  }
};

// One tile of keys [j0, j0 + 64): S = Q K^T, the online softmax, O += P V. kPartial: only the
// first `live` 16-key slices are multiplied (live_slices: the others hold no key, their scores
// stay 0 and are masked to -inf, their probabilities 0); a separate instantiation, so that
// whole tiles keep loops free of branches (a test per slice made the ViT's attention 30 %
// slower). `masked`: the tile reaches past Lk or the causal mask applies (else no key is
// tested).
template <int DP, int R, int LD, bool kPartial>
__device__ __forceinline__ void attend_tile(ForwardRows<DP, R>& w, const uint16_t* Kb,
                                            const uint16_t* Vb, int64_t j0, int live, bool masked,
                                            const Problem& p, float scale2) {
  const int lane = threadIdx.x & 31, t = lane & 3;
  const int mat = lane >> 3, mrow = lane & 7;  // ldmatrix: block lane / 8, row lane % 8 in it
  const float inf = __int_as_float(0x7f800000);

  // S = Q K^T. One ldmatrix.x4 gives the B fragments of two 8-key blocks over 16 of DP:
  // blocks (keys n0.., dims k0..), (n0.., k0 + 8..), (n0 + 8.., k0..), (n0 + 8.., k0 + 8..).
  float s[R][kKeys / 8][4];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[r][n][0] = s[r][n][1] = s[r][n][2] = s[r][n][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < DP / 16; ++kk)
#pragma unroll
    for (int np = 0; np < kKeys / 16; ++np) {
      if (kPartial && np >= live) continue;  // scores stay 0, masked to -inf below
      uint32_t bk[4];
      const int key = np * 16 + (mat >> 1) * 8 + mrow, dim = kk * 16 + (mat & 1) * 8;
      ldmatrix_x4(bk, Kb + key * LD + dim);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        mma_bf16_regs(s[r][2 * np], w.qf[r][kk], bk[0], bk[1]);
        mma_bf16_regs(s[r][2 * np + 1], w.qf[r][kk], bk[2], bk[3]);
      }
    }

#pragma unroll
  for (int r = 0; r < R; ++r) {
    // Scale (and mask where a key is past Lk or after the row under the causal mask), and
    // each row's maximum over the tile: the row's 64 scores sit in the 4 threads of a quad.
    float mx[2] = {-inf, -inf};
    if (masked) {
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t col = j0 + n * 8 + 2 * t + (e & 1), row = w.rows[r][e >> 1];
          const bool keep = col < p.Lk && !(p.causal && col > row);
          s[r][n][e] = keep ? s[r][n][e] * scale2 : -inf;
          mx[e >> 1] = fmaxf(mx[e >> 1], s[r][n][e]);
        }
    } else {
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[r][n][e] *= scale2;
          mx[e >> 1] = fmaxf(mx[e >> 1], s[r][n][e]);
        }
    }
    float m_use[2], alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float m_new = fmaxf(w.m[r][h], mx[h]);
      m_use[h] = m_new == -inf ? 0.f : m_new;  // no inf - inf while a row has attended nothing
      alpha[h] = exp2f(w.m[r][h] - m_use[h]);
      w.m[r][h] = m_new;
      w.l[r][h] *= alpha[h];  // this thread's part of the row sum, summed over the quad at the end
    }
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[r][n][e] = exp2f(s[r][n][e] - m_use[e >> 1]);
        w.l[r][e >> 1] += s[r][n][e];
      }
#pragma unroll
    for (int n = 0; n < DP / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) w.o[r][n][e] *= alpha[e >> 1];
  }

  // O += P V, 16 keys at a time. One ldmatrix.x4.trans gives the B fragments of two 8-dim
  // blocks: (keys k0.., dims n0..), (k0 + 8.., n0..), (k0.., n0 + 8..), (k0 + 8.., n0 + 8..).
#pragma unroll
  for (int kk = 0; kk < kKeys / 16; ++kk) {
    if (kPartial && kk >= live) continue;  // probabilities all 0
    uint32_t a[R][4];
#pragma unroll
    for (int r = 0; r < R; ++r) a_from_c(a[r], s[r][2 * kk], s[r][2 * kk + 1]);
#pragma unroll
    for (int np = 0; np < DP / 16; ++np) {
      uint32_t bv[4];
      const int key = kk * 16 + (mat & 1) * 8 + mrow, dim = np * 16 + (mat >> 1) * 8;
      ldmatrix_x4_trans(bv, Vb + key * LD + dim);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        mma_bf16_regs(w.o[r][2 * np], a[r], bv[0], bv[1]);
        mma_bf16_regs(w.o[r][2 * np + 1], a[r], bv[2], bv[3]);
      }
    }
  }
}

// attend_tile on a tile with `live` slices holding keys: the branch-free instantiation for
// whole tiles.
template <int DP, int R, int LD>
__device__ __forceinline__ void attend_keys(ForwardRows<DP, R>& w, const uint16_t* Kb,
                                            const uint16_t* Vb, int64_t j0, int live, bool masked,
                                            const Problem& p, float scale2) {
  if (live == kKeys / 16)
    attend_tile<DP, R, LD, false>(w, Kb, Vb, j0, live, masked, p, scale2);
  else
    attend_tile<DP, R, LD, true>(w, Kb, Vb, j0, live, masked, p, scale2);
}

// The rows' outputs (divided by their sums; zeros for a row that attended nothing) as bf16
// pairs, and their log-sum-exp (natural log; inf for such a row), for batch entry b. Every
// lane of the warp takes part (quad shuffles).
template <int DP, int R>
__device__ inline void store_rows(ForwardRows<DP, R>& w, int64_t b, const Problem& p,
                                  cpu::bf16* __restrict__ out, float* __restrict__ lse) {
  const int t = threadIdx.x & 3;
  const float inf = __int_as_float(0x7f800000);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      w.l[r][h] += __shfl_xor_sync(0xffffffffu, w.l[r][h], 1);
      w.l[r][h] += __shfl_xor_sync(0xffffffffu, w.l[r][h], 2);
      const int64_t row = w.rows[r][h];
      if (row >= p.Lq) continue;
      if (t == 0)
        lse[b * p.Lq + row] =
            w.l[r][h] > 0.f ? w.m[r][h] * 0.6931471805599453f + logf(w.l[r][h]) : inf;
      const float inv = w.l[r][h] > 0.f ? 1.f / w.l[r][h] : 0.f;
      cpu::bf16* out_row = out + (b * p.Lq + row) * p.D;
#pragma unroll
      for (int n = 0; n < DP / 8; ++n) {
        const int col = n * 8 + 2 * t;  // even, and D is a multiple of 8: col + 1 < D with col
        if (col < p.D)
          *reinterpret_cast<uint32_t*>(out_row + col) =
              pack_bf16(w.o[r][n][2 * h] * inv, w.o[r][n][2 * h + 1] * inv);
      }
    }
}

}  // namespace shallow::cuda::attention_detail
