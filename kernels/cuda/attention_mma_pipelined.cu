// Fused attention forward for bf16 on tensor cores, pipelined: the same block shape and online
// softmax as attention_mma.cu (4 warps, 64 query rows, tiles of 64 keys, head dim padded with
// zeros to DP), with the operands moved differently:
//   - K and V tiles are copied with cp.async (16-byte chunks) into two shared-memory buffers:
//     tile j + 1 is in flight while tile j is computed;
//   - V stays row-major (no transposed scalar stores); its B fragments come from
//     ldmatrix.trans, those of K from ldmatrix, 4 blocks of 8 x 8 per instruction;
//   - each warp's Q fragments are read from shared memory once and kept in registers;
//   - the mask is applied only on tiles that need it (the last, or causal ones), and warps
//     whose 16 rows are all past Lq skip the products (at Lq = 197, 3 of the last tile's 4);
//   - on the last key tile only the 16-key slices that hold a key are multiplied (at Lk =
//     197 one of four: the others' probabilities are zeros, so the sums are the same bits);
//   - the output is stored as bf16 pairs.
// Rows are DP + 8 elements apart (80, 144 or 272 bytes: 5, 9 or 17 chunks of 16 bytes), so the
// 8 row addresses of an ldmatrix block fall in 8 different 16-byte bank groups.
//
// Shared memory: (64 R + 4 * 64) rows of DP + 8 bf16: 25, 46 or 85 KiB at DP = 32, 64, 128
// with R = 1 (16 query rows per warp); 55 KiB at DP = 64 with R = 2 (32 rows per warp).
// Registers (ptxas -v, sm_90a, with the bounds of kForwardMinBlocks): R = 1: 127, 143 and 212
// per thread, no spills; so 4, 3 and 2 blocks of 4 warps per SM (registers bind at DP = 64: 4
// blocks would cap them at 128, which spills). R = 2: 199 and 240 at DP = 32 and 64, 2 blocks.
// Nsight Compute at the ViT's batch 256 (H200): 12.5 % occupancy at R = 2 (25 % at R = 1),
// the SM pipes 40-58 % busy, the top stall a fixed-latency dependency: latency-bound.
//
// Only for operands that Source::vec allows (16-byte aligned rows, D a multiple of 8); the
// launcher in attention.cu falls back to attention_mma.cu otherwise.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/attention_mma.cuh"

namespace shallow::cuda::attention_detail {
namespace {

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

// How many 16-key slices of a 64-key tile hold one of the `left` keys still to come (at 197
// keys the last tile has one live slice of four).
__device__ inline int live_slices(int64_t left) {
  static_assert(kKeys == 64, "tiles of four 16-key slices");
  return left >= 64 ? 4 : int((left + 15) / 16);
}

// One tile of keys [j0, j0 + 64): S = Q K^T, the online softmax, O += P V. kPartial: only the
// first `live` 16-key slices are multiplied (live_slices: the others hold no key, their scores
// stay 0 and are masked to -inf, their probabilities 0); a separate instantiation, so that
// whole tiles keep loops free of branches (with a test per slice in every tile the ViT's
// batch-256 forward measured 0.448 ms, with this 0.369 on an H200). `masked`: the tile reaches past Lk or the causal mask applies (else no key is
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
    for (int h = 0; h < 2; ++h) online_softmax_step(mx[h], w.m[r][h], w.l[r][h], alpha[h], m_use[h]);
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

// R is the number of 16-row slices per warp: 1 (blocks of 64 query rows) or 2 (blocks of 128,
// each warp 32 rows). With 2, every K and V fragment read from shared memory by ldmatrix
// feeds two MMAs instead of one: half the shared-memory traffic per product, and the K/V tiles
// of a block serve twice the rows.
template <int DP, int R>
__global__ void __launch_bounds__(kMmaThreads, kForwardMinBlocks<DP, R>)
    forward_mma_pipelined_kernel(Problem p, Source<cpu::bf16> q, Source<cpu::bf16> k,
                                 Source<cpu::bf16> v, cpu::bf16* __restrict__ out,
                                 float* __restrict__ lse) {
  constexpr int LD = DP + 8;
  constexpr int kBlockRows = kRows * R;
  constexpr int kTile = kKeys * LD;  // elements of one K or V buffer
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(shared_bytes);  // [kBlockRows][LD]
  uint16_t* Ks = Qs + kBlockRows * LD;                         // [2][kKeys][LD]
  uint16_t* Vs = Ks + 2 * kTile;                               // [2][kKeys][LD]

  const int64_t q_tiles = tiles(p.Lq, kBlockRows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kBlockRows;
  const int warp_row0 = (threadIdx.x >> 5) * 16 * R;
  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kBlockRows);
  const bool warp_has_rows = i0 + warp_row0 < p.Lq;

  zero_padding<DP, LD>(Qs, kBlockRows + 4 * kKeys, p.D);  // Q, both K and both V buffers
  copy_rows_async(Qs, LD, kBlockRows, q, b, i0, p.Lq, p.D);  // lands with the first K, V tile

  const float scale2 = p.scale * 1.4426950408889634f;  // scores in base 2
  ForwardRows<DP, R> w;
  w.start(i0 + warp_row0);
  walk_tiles(Ks, Vs, LD, kKeys, k, v, b, 0, j_end, p.Lk, p.D, [&](int64_t j0, int buf, bool) {
    // A warp whose rows are all past Lq (in the last query tile) only helps with the copies.
    if (!warp_has_rows) return;
    if (j0 == 0) w.template load_q<LD>(Qs, warp_row0);
    attend_keys<DP, R, LD>(w, Ks + buf * kTile, Vs + buf * kTile, j0, live_slices(j_end - j0),
                           j0 + kKeys > p.Lk || p.causal, p, scale2);
  });
  store_rows(w, b, p, out, lse);
}

template <int DP, int R>
Status launch(const FusedAttentionArgs<cpu::bf16>& a, const Source<cpu::bf16>& q,
              const Source<cpu::bf16>& k, const Source<cpu::bf16>& v, cpu::bf16* out, float* lse,
              cudaStream_t stream) {
  constexpr int LD = DP + 8;
  const size_t bytes = sizeof(uint16_t) * size_t((kRows * R + 4 * kKeys) * LD);
  const int64_t blocks = a.batch * tiles(a.Lq, kRows * R);
  if (blocks == 0) return ok_status();
  SH_RETURN_IF_FAILED(check_grid(blocks, "attention forward_mma_pipelined_kernel"));
  auto kernel = forward_mma_pipelined_kernel<DP, R>;
  SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention forward_mma_pipelined_kernel"));
  kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(problem_of(a), q, k, v, out, lse);
  return launch_status("attention forward_mma_pipelined_kernel");
}

}  // namespace

bool can_forward_mma_pipelined(const FusedAttentionArgs<cpu::bf16>& a, const cpu::bf16* out) {
  // 16-byte copies need aligned rows; the output is stored in aligned bf16 pairs.
  return source_of(a.q, a.D).vec && source_of(a.k, a.D).vec && source_of(a.v, a.D).vec &&
         reinterpret_cast<uintptr_t>(out) % 16 == 0;
}

Status forward_mma_pipelined(const FusedAttentionArgs<cpu::bf16>& a, cpu::bf16* out, float* lse,
                             cudaStream_t stream, int slices_per_warp) {
  const Source<cpu::bf16> q = source_of(a.q, a.D), k = source_of(a.k, a.D),
                          v = source_of(a.v, a.D);
  const bool two = slices_per_warp == 2;  // head dims up to 64 only: 128 would spill
  if (a.D <= 32) return two ? launch<32, 2>(a, q, k, v, out, lse, stream) : launch<32, 1>(a, q, k, v, out, lse, stream);
  if (a.D <= 64) return two ? launch<64, 2>(a, q, k, v, out, lse, stream) : launch<64, 1>(a, q, k, v, out, lse, stream);
  return launch<128, 1>(a, q, k, v, out, lse, stream);
}

}  // namespace shallow::cuda::attention_detail
