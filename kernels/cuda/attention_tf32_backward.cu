// Fused attention backward for f32 on tensor cores, each product taken as three TF32 products
// (attention_tf32.cuh). The two deterministic passes of the bf16 kernels
// (attention_mma_backward_pipelined.cu: same blocks, same products, no atomics), with f32
// tiles:
//
//   pass 1, a block per 64 keys (16 per warp), over the query tiles:
//     S^T = K Q^T, dP^T = V dO^T, P^T = exp(scale S^T - lse), dS^T = P^T * (dP^T - D)
//     dV += P^T dO, dK += dS^T Q
//   pass 2, a block per 64 queries (16 per warp), over the key tiles:
//     S = Q K^T, dP = dO V^T, dS = P * (dP - D), dQ += dS K
//
// The walked tiles come by cp.async into two buffers (tile i + 1 in flight while tile i is
// computed); the block's own rows (K and V, or Q and dO) stay in shared memory and are split
// as each product needs them (kept in registers, split, they would take 128 of them at head
// dim 64). Pass 1 loads the next query tile's log-sum-exp and row dots while computing one.
// Shared memory: (2 * 64 + 4 * 64) rows of DP + 4 floats (55 or 102 KiB at DP = 32, 64), plus
// 1 KiB of row values in pass 1: two blocks per multiprocessor. Registers (ptxas -v, sm_90a):
// 239-255 per thread, the dQ pass at DP = 64 spilling 28 bytes.
//
// Only for operands and gradients that Source::vec allows (16-byte aligned rows, D a multiple
// of 4) with head dims up to 64 (can_backward_tf32); the FMA tiles take the others.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/attention_tf32.cuh"

namespace shallow::cuda::attention_detail {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
static_assert(kMmaThreads == 2 * kRows,
              "pass 1 reads a tile's lse and row dots with one thread each");

template <int DP>
__global__ void __launch_bounds__(kMmaThreads, 2)
    backward_dkdv_tf32_kernel(Problem p, Source<float> q, Source<float> k, Source<float> v,
                              Source<float> dO, const float* __restrict__ lse,
                              const float* __restrict__ row_dot, float* __restrict__ gk,
                              float* __restrict__ gv) {
  constexpr int LD = DP + 4;
  constexpr int kTile = kRows * LD;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  float* Ks = reinterpret_cast<float*>(shared_bytes);  // [kKeys][LD]
  float* Vs = Ks + kKeys * LD;                          // [kKeys][LD]
  float* Qs = Vs + kKeys * LD;                          // [2][kRows][LD]
  float* dOs = Qs + 2 * kTile;                          // [2][kRows][LD]
  float* lse_s = dOs + 2 * kTile;                       // [2][kRows], base 2
  float* d_s = lse_s + 2 * kRows;                       // [2][kRows]

  const int64_t k_tiles = tiles(p.Lk, kKeys);
  const int64_t b = blockIdx.x / k_tiles, j0 = (blockIdx.x % k_tiles) * kKeys;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t keys[2] = {j0 + warp * 16 + g, j0 + warp * 16 + g + 8};
  const float scale2 = p.scale * kLog2e;
  const float inf = __int_as_float(0x7f800000);
  const bool warp_has_keys = j0 + warp * 16 < p.Lk;

  zero_padding<DP, LD>(Ks, 2 * kKeys + 4 * kRows, p.D);  // K, V, both Q and both dO buffers
  // The lse (base 2) and row dot of row r of the query tile at i0; threads [0, 64) read the
  // lse, [64, 128) the row dots.
  auto row_value = [&](int64_t i0) {
    const int r = threadIdx.x % kRows;
    const int64_t row = i0 + r;
    if (threadIdx.x < kRows) return row < p.Lq ? lse[b * p.Lq + row] * kLog2e : inf;
    return row < p.Lq ? row_dot[b * p.Lq + row] : 0.f;
  };
  auto store_row_value = [&](int buf, float value) {
    const int r = threadIdx.x % kRows;
    (threadIdx.x < kRows ? lse_s : d_s)[buf * kRows + r] = value;
  };

  // Under the causal mask, queries before j0 attend none of these keys.
  const int64_t i_begin = p.causal ? j0 : 0;
  copy_rows_async(Ks, LD, kKeys, k, b, j0, p.Lk, p.D);  // land with the first query tile
  copy_rows_async(Vs, LD, kKeys, v, b, j0, p.Lk, p.D);
  if (i_begin < p.Lq) store_row_value(0, row_value(i_begin));

  float dk[DP / 8][4], dv[DP / 8][4];
#pragma unroll
  for (int d = 0; d < DP / 8; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[d][e] = dv[d][e] = 0.f;

  walk_tiles(Qs, dOs, LD, kRows, q, dO, b, i_begin, p.Lq, p.Lq, p.D,
             [&](int64_t i0, int buf, bool has_next) {
    // The next tile's row values, stored after this one (that buffer is not read in it).
    const float next_value = has_next ? row_value(i0 + kRows) : 0.f;
    if (warp_has_keys) {  // a warp whose 16 keys are all past Lk only helps with the copies
      const float* Qb = Qs + buf * kTile;
      const float* dOb = dOs + buf * kTile;
      const float* lse_b = lse_s + buf * kRows;
      const float* d_b = d_s + buf * kRows;
      float st[kRows / 8][4], dpt[kRows / 8][4];
#pragma unroll
      for (int n = 0; n < kRows / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) st[n][e] = dpt[n][e] = 0.f;
      auto k_rows = [&](int kk) { return load_a_split(Ks, LD, warp * 16, kk * 8); };
      auto v_rows = [&](int kk) { return load_a_split(Vs, LD, warp * 16, kk * 8); };
      product_with_rows<DP, LD>(st, k_rows, Qb);
      product_with_rows<DP, LD>(dpt, v_rows, dOb);
      // Element (key, query c of the tile): st holds P^T after this, dpt holds dS^T.
#pragma unroll
      for (int n = 0; n < kRows / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = n * 8 + 2 * t + (e & 1);
          const int64_t row = i0 + c;
          const float prob = row < p.Lq && attends(p, row, keys[e >> 1])
                                 ? exp2f(st[n][e] * scale2 - lse_b[c])
                                 : 0.f;
          st[n][e] = prob;
          dpt[n][e] = prob * (dpt[n][e] - d_b[c]);
        }
      product_into<DP, LD>(dv, st, dOb);
      product_into<DP, LD>(dk, dpt, Qb);
    }
    if (has_next) store_row_value(buf ^ 1, next_value);
  });

  if (gk) store_pairs<DP>(dk, keys, p.Lk, p.D, p.scale, gk + b * p.Lk * p.D);
  if (gv) store_pairs<DP>(dv, keys, p.Lk, p.D, 1.f, gv + b * p.Lk * p.D);
}

template <int DP>
__global__ void __launch_bounds__(kMmaThreads, 2)
    backward_dq_tf32_kernel(Problem p, Source<float> q, Source<float> k, Source<float> v,
                            Source<float> dO, const float* __restrict__ lse,
                            const float* __restrict__ row_dot, float* __restrict__ gq) {
  constexpr int LD = DP + 4;
  constexpr int kTile = kKeys * LD;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  float* Qs = reinterpret_cast<float*>(shared_bytes);  // [kRows][LD]
  float* dOs = Qs + kRows * LD;                         // [kRows][LD]
  float* Ks = dOs + kRows * LD;                         // [2][kKeys][LD]
  float* Vs = Ks + 2 * kTile;                           // [2][kKeys][LD]

  const int64_t q_tiles = tiles(p.Lq, kRows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t rows[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};
  const float scale2 = p.scale * kLog2e;
  const float inf = __int_as_float(0x7f800000);
  const bool warp_has_rows = i0 + warp * 16 < p.Lq;

  zero_padding<DP, LD>(Qs, 2 * kRows + 4 * kKeys, p.D);  // Q, dO, both K and both V buffers
  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kRows);
  copy_rows_async(Qs, LD, kRows, q, b, i0, p.Lq, p.D);  // land with the first key tile
  copy_rows_async(dOs, LD, kRows, dO, b, i0, p.Lq, p.D);

  float lse2[2], dd[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    lse2[h] = rows[h] < p.Lq ? lse[b * p.Lq + rows[h]] * kLog2e : inf;
    dd[h] = rows[h] < p.Lq ? row_dot[b * p.Lq + rows[h]] : 0.f;
  }
  float dq[DP / 8][4];
#pragma unroll
  for (int d = 0; d < DP / 8; ++d) dq[d][0] = dq[d][1] = dq[d][2] = dq[d][3] = 0.f;

  walk_tiles(Ks, Vs, LD, kKeys, k, v, b, 0, j_end, p.Lk, p.D, [&](int64_t j0, int buf, bool) {
    if (!warp_has_rows) return;  // a warp whose rows are all past Lq only helps with the copies
    const float* Kb = Ks + buf * kTile;
    const float* Vb = Vs + buf * kTile;
    float s[kKeys / 8][4], dp[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.f;
    auto q_rows = [&](int kk) { return load_a_split(Qs, LD, warp * 16, kk * 8); };
    auto do_rows = [&](int kk) { return load_a_split(dOs, LD, warp * 16, kk * 8); };
    product_with_rows<DP, LD>(s, q_rows, Kb);
    product_with_rows<DP, LD>(dp, do_rows, Vb);
    // s holds dS after this.
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t col = j0 + n * 8 + 2 * t + (e & 1);
        const int h = e >> 1;
        const float prob = attends(p, rows[h], col) ? exp2f(s[n][e] * scale2 - lse2[h]) : 0.f;
        s[n][e] = prob * (dp[n][e] - dd[h]);
      }
    product_into<DP, LD>(dq, s, Kb);
  });

  store_pairs<DP>(dq, rows, p.Lq, p.D, p.scale, gq + b * p.Lq * p.D);
}

template <int DP>
Status launch(const FusedAttentionArgs<float>& a, const float* lse, const float* grad_out,
              const float* row_dot, float* gq, float* gk, float* gv, cudaStream_t stream) {
  constexpr int LD = DP + 4;
  const Problem p = problem_of(a);
  const Source<float> q = source_of(a.q, a.D), k = source_of(a.k, a.D), v = source_of(a.v, a.D);
  const Source<float> dO = contiguous_source(grad_out, a.Lq, a.D);
  if ((gk || gv) && a.batch * a.Lk > 0) {
    const size_t bytes = sizeof(float) * size_t((2 * kKeys + 4 * kRows) * LD + 4 * kRows);
    const int64_t blocks = a.batch * tiles(a.Lk, kKeys);
    SH_RETURN_IF_FAILED(check_grid(blocks, "attention backward_dkdv_tf32_kernel"));
    auto kernel = backward_dkdv_tf32_kernel<DP>;
    SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention backward_dkdv_tf32_kernel"));
    kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(p, q, k, v, dO, lse, row_dot,
                                                                  gk, gv);
    SH_RETURN_IF_FAILED(launch_status("attention backward_dkdv_tf32_kernel"));
  }
  if (gq && a.batch * a.Lq > 0) {
    const size_t bytes = sizeof(float) * size_t((2 * kRows + 4 * kKeys) * LD);
    const int64_t blocks = a.batch * tiles(a.Lq, kRows);
    SH_RETURN_IF_FAILED(check_grid(blocks, "attention backward_dq_tf32_kernel"));
    auto kernel = backward_dq_tf32_kernel<DP>;
    SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention backward_dq_tf32_kernel"));
    kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(p, q, k, v, dO, lse, row_dot, gq);
    SH_RETURN_IF_FAILED(launch_status("attention backward_dq_tf32_kernel"));
  }
  return ok_status();
}

}  // namespace

bool can_backward_tf32(const FusedAttentionArgs<float>& a, const float* grad_out,
                       const float* gq, const float* gk, const float* gv) {
  auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  return a.D <= kTf32MaxD && source_of(a.q, a.D).vec && source_of(a.k, a.D).vec &&
         source_of(a.v, a.D).vec && contiguous_source(grad_out, a.Lq, a.D).vec && aligned(gq) &&
         aligned(gk) && aligned(gv);
}

Status backward_tf32(const FusedAttentionArgs<float>& a, const float* out, const float* lse,
                     const float* grad_out, float* row_dot, float* gq, float* gk, float* gv,
                     cudaStream_t stream) {
  SH_RETURN_IF_FAILED(row_dots(a.batch * a.Lq, a.D, out, grad_out, row_dot, stream));
  if (a.D <= 32) return launch<32>(a, lse, grad_out, row_dot, gq, gk, gv, stream);
  return launch<64>(a, lse, grad_out, row_dot, gq, gk, gv, stream);
}

}  // namespace shallow::cuda::attention_detail
