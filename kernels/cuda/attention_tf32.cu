// Fused attention forward for f32 on tensor cores, each product taken as three TF32 products
// (attention_tf32.cuh: the split, the fragment layouts, why the error stays near f32's).
//
// The block shape, pipeline and online softmax are those of the bf16 kernel
// (attention_mma_pipelined.cu, 16 query rows per warp): 4 warps and 64 query rows per block,
// 64-key tiles of K and V copied with cp.async into two buffers (tile j + 1 in flight while
// tile j is computed), Q's fragments split once and kept in registers, the mask only on tiles
// that need it, the empty 8-key blocks of the last tile skipped in a separate instantiation.
// Shared memory: (64 + 4 * 64) rows of DP + 4 floats: 45 KiB at DP = 32, 85 KiB at DP = 64.
//
// Only for operands that Source::vec allows (16-byte aligned rows, D a multiple of 4) and head
// dims up to 64; attention.cu runs the others on the FMA tiles (attention_simt.cu).
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/attention_tf32.cuh"

namespace shallow::cuda::attention_detail {
namespace {

constexpr int kBlocks8 = kKeys / 8;  // 8-key blocks of a key tile

// What a warp carries across the key tiles of its 16 rows: rows[0] = first + g, rows[1] =
// rows[0] + 8.
template <int DP>
struct Tf32Rows {
  int64_t rows[2];
  float m[2];             // running maximum of the scaled scores (base 2)
  float l[2];             // this thread's part of the running sum of exponentials
  float o[DP / 8][4];     // unnormalised output accumulators
  SplitA q[DP / 8];       // the rows of Q as split A fragments

  __device__ void start(int64_t first_row) {
    const int g = (threadIdx.x & 31) >> 2;
    rows[0] = first_row + g;
    rows[1] = rows[0] + 8;
    m[0] = m[1] = -__int_as_float(0x7f800000);
    l[0] = l[1] = 0.f;
#pragma unroll
    for (int n = 0; n < DP / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  }

  // Q's fragments from rows [row0, row0 + 16) of the shared tile Qs, split once.
  template <int LD>
  __device__ void load_q(const float* Qs, int row0) {
#pragma unroll
    for (int kk = 0; kk < DP / 8; ++kk) q[kk] = load_a_split(Qs, LD, row0, kk * 8);
  }
};

// How many 8-key blocks of a 64-key tile hold one of the `left` keys still to come.
__device__ inline int live_blocks(int64_t left) {
  return left >= kKeys ? kBlocks8 : int((left + 7) / 8);
}

// One tile of keys [j0, j0 + 64): S = Q K^T, the online softmax, O += P V. kPartial: only the
// first `live` 8-key blocks are multiplied (the others hold no key: their scores stay 0 and are
// masked to -inf, their probabilities 0). `masked`: the tile reaches past Lk or the causal mask
// applies (else no key is tested).
template <int DP, int LD, bool kPartial>
__device__ __forceinline__ void attend_tile(Tf32Rows<DP>& w, const float* Kb, const float* Vb,
                                            int64_t j0, int live, bool masked, const Problem& p,
                                            float scale2) {
  const int t = threadIdx.x & 3;
  const float inf = __int_as_float(0x7f800000);

  // S = Q K^T: block n holds keys j0 + 8n .. + 7.
  float s[kBlocks8][4];
#pragma unroll
  for (int n = 0; n < kBlocks8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
  const int blocks = kPartial ? live : kBlocks8;
  product_with_rows<DP, LD>(s, [&](int kk) -> const SplitA& { return w.q[kk]; }, Kb, blocks);

  // Scale (and mask), each row's maximum over the tile, the online softmax's step.
  float mx[2] = {-inf, -inf};
#pragma unroll
  for (int n = 0; n < kBlocks8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (masked) {
        const int64_t col = j0 + n * 8 + 2 * t + (e & 1), row = w.rows[e >> 1];
        s[n][e] = col < p.Lk && !(p.causal && col > row) ? s[n][e] * scale2 : -inf;
      } else {
        s[n][e] *= scale2;
      }
      mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
    }
  float m_use[2], alpha[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) online_softmax_step(mx[h], w.m[h], w.l[h], alpha[h], m_use[h]);
#pragma unroll
  for (int n = 0; n < kBlocks8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] = exp2f(s[n][e] - m_use[e >> 1]);
      w.l[e >> 1] += s[n][e];
    }
#pragma unroll
  for (int d = 0; d < DP / 8; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) w.o[d][e] *= alpha[e >> 1];

  product_into<DP, LD>(w.o, s, Vb, blocks);  // O += P V
}

// The rows' outputs (divided by their sums; zeros for a row that attended nothing) and their
// log-sum-exp (natural log; inf for such a row), for batch entry b. Every lane takes part.
template <int DP>
__device__ inline void store_rows(Tf32Rows<DP>& w, int64_t b, const Problem& p,
                                  float* __restrict__ out, float* __restrict__ lse) {
  const int t = threadIdx.x & 3;
  const float inf = __int_as_float(0x7f800000);
  float inv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    w.l[h] += __shfl_xor_sync(0xffffffffu, w.l[h], 1);
    w.l[h] += __shfl_xor_sync(0xffffffffu, w.l[h], 2);
    inv[h] = w.l[h] > 0.f ? 1.f / w.l[h] : 0.f;
    if (t == 0 && w.rows[h] < p.Lq)
      lse[b * p.Lq + w.rows[h]] =
          w.l[h] > 0.f ? w.m[h] * 0.6931471805599453f + logf(w.l[h]) : inf;
  }
#pragma unroll
  for (int d = 0; d < DP / 8; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) w.o[d][e] *= inv[e >> 1];
  store_pairs<DP>(w.o, w.rows, p.Lq, p.D, 1.f, out + b * p.Lq * p.D);
}

// Blocks per SM the register bound asks for (ptxas -v, sm_90a: 212 registers at DP = 64, 143
// at DP = 32, no spills; 4 blocks at DP = 32 would cap them at 128, which spills). Shared
// memory allows 2 and 4.
template <int DP>
constexpr int kTf32MinBlocks = DP >= 64 ? 2 : 3;

template <int DP>
__global__ void __launch_bounds__(kMmaThreads, kTf32MinBlocks<DP>)
    forward_tf32_kernel(Problem p, Source<float> q, Source<float> k, Source<float> v,
                        float* __restrict__ out, float* __restrict__ lse) {
  constexpr int LD = DP + 4;
  constexpr int kTile = kKeys * LD;  // floats of one K or V buffer
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  float* Qs = reinterpret_cast<float*>(shared_bytes);  // [kRows][LD]
  float* Ks = Qs + kRows * LD;                      // [2][kKeys][LD]
  float* Vs = Ks + 2 * kTile;                           // [2][kKeys][LD]

  const int64_t q_tiles = tiles(p.Lq, kRows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kRows;
  const int warp_row0 = (threadIdx.x >> 5) * 16;
  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kRows);
  const bool warp_has_rows = i0 + warp_row0 < p.Lq;

  zero_padding<DP, LD>(Qs, kRows + 4 * kKeys, p.D);  // Q, both K and both V buffers
  copy_rows_async(Qs, LD, kRows, q, b, i0, p.Lq, p.D);  // lands with the first K, V tile

  const float scale2 = p.scale * 1.4426950408889634f;  // scores in base 2
  Tf32Rows<DP> w;
  w.start(i0 + warp_row0);
  walk_tiles(Ks, Vs, LD, kKeys, k, v, b, 0, j_end, p.Lk, p.D, [&](int64_t j0, int buf, bool) {
    if (!warp_has_rows) return;  // a warp whose rows are all past Lq only helps with the copies
    if (j0 == 0) w.template load_q<LD>(Qs, warp_row0);
    const int live = live_blocks(j_end - j0);
    const bool masked = j0 + kKeys > p.Lk || p.causal;
    const float* Kb = Ks + buf * kTile;
    const float* Vb = Vs + buf * kTile;
    if (live == kBlocks8)
      attend_tile<DP, LD, false>(w, Kb, Vb, j0, live, masked, p, scale2);
    else
      attend_tile<DP, LD, true>(w, Kb, Vb, j0, live, masked, p, scale2);
  });
  store_rows(w, b, p, out, lse);
}

template <int DP>
Status launch(const FusedAttentionArgs<float>& a, const Source<float>& q, const Source<float>& k,
              const Source<float>& v, float* out, float* lse, cudaStream_t stream) {
  constexpr int LD = DP + 4;
  const size_t bytes = sizeof(float) * size_t((kRows + 4 * kKeys) * LD);
  const int64_t blocks = a.batch * tiles(a.Lq, kRows);
  if (blocks == 0) return ok_status();
  SH_RETURN_IF_FAILED(check_grid(blocks, "attention forward_tf32_kernel"));
  auto kernel = forward_tf32_kernel<DP>;
  SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention forward_tf32_kernel"));
  kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(problem_of(a), q, k, v, out, lse);
  return launch_status("attention forward_tf32_kernel");
}

}  // namespace

bool can_forward_tf32(const FusedAttentionArgs<float>& a, const float* out) {
  // 16-byte copies need aligned rows; the output is stored in 8-byte pairs.
  return a.D <= kTf32MaxD && source_of(a.q, a.D).vec && source_of(a.k, a.D).vec &&
         source_of(a.v, a.D).vec && reinterpret_cast<uintptr_t>(out) % 16 == 0;
}

Status forward_tf32(const FusedAttentionArgs<float>& a, float* out, float* lse,
                    cudaStream_t stream) {
  const Source<float> q = source_of(a.q, a.D), k = source_of(a.k, a.D), v = source_of(a.v, a.D);
  if (a.D <= 32) return launch<32>(a, q, k, v, out, lse, stream);
  return launch<64>(a, q, k, v, out, lse, stream);
}

}  // namespace shallow::cuda::attention_detail
