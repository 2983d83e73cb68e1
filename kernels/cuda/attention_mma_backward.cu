// Fused attention backward for bf16 on tensor cores (mma.sync m16n8k16, f32 accumulators), in
// the two deterministic passes of attention_simt.cu, for head dims up to kMmaBackwardMaxD
// (padded with zeros to DP = 32 or 64). A block has 4 warps; a warp owns 16 rows of the block's
// 64 (keys in the first pass, queries in the second). Probabilities are recomputed from the
// saved log-sum-exp; P and dS are rounded to bf16 where they feed a product, as in the forward.
//
//   pass 1, a block per 64 keys, over the query tiles:
//     S^T = K Q^T, dP^T = V dO^T          (A: K, V rows; B: Q, dO rows)
//     P^T = exp(scale S^T - lse), dS^T = P^T * (dP^T - D)
//     dV += P^T dO, dK += dS^T Q          (A: from the accumulators; B: dO, Q transposed)
//   pass 2, a block per 64 queries, over the key tiles:
//     S = Q K^T, dP = dO V^T, dS = P * (dP - D), dQ += dS K   (B: K transposed)
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/attention_mma.cuh"

namespace shallow::cuda::attention_detail {
namespace {

using cpu::bf16;

constexpr float kLog2e = 1.4426950408889634f;

template <int DP>
__global__ void __launch_bounds__(kMmaThreads)
    backward_dkdv_mma_kernel(Problem p, Source<bf16> q, Source<bf16> k, Source<bf16> v,
                             Source<bf16> dO, const float* __restrict__ lse,
                             const float* __restrict__ row_dot, bf16* __restrict__ gk,
                             bf16* __restrict__ gv) {
  constexpr int LD = DP + 8;      // rows of D elements (padded: see attention_mma.cu)
  constexpr int LDT = kRows + 8;  // rows of the transposed Q and dO tiles
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint16_t* Ks = reinterpret_cast<uint16_t*>(shared_bytes);  // [kKeys][LD]
  uint16_t* Vs = Ks + kKeys * LD;                              // [kKeys][LD]
  uint16_t* Qs = Vs + kKeys * LD;                              // [kRows][LD]
  uint16_t* dOs = Qs + kRows * LD;                             // [kRows][LD]
  uint16_t* Qt = dOs + kRows * LD;                             // [DP][LDT]
  uint16_t* dOt = Qt + DP * LDT;                               // [DP][LDT]
  float* lse_s = reinterpret_cast<float*>(dOt + DP * LDT);     // [kRows], base 2
  float* d_s = lse_s + kRows;                                  // [kRows]

  const int64_t k_tiles = tiles(p.Lk, kKeys);
  const int64_t b = blockIdx.x / k_tiles, j0 = (blockIdx.x % k_tiles) * kKeys;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t keys[2] = {j0 + warp * 16 + g, j0 + warp * 16 + g + 8};
  const float scale2 = p.scale * kLog2e;
  const float inf = __int_as_float(0x7f800000);

  load_tile(Ks, LD, kKeys, DP, k, b, j0, p.Lk, p.D);
  load_tile(Vs, LD, kKeys, DP, v, b, j0, p.Lk, p.D);
  float dk[DP / 8][4], dv[DP / 8][4];
#pragma unroll
  for (int n = 0; n < DP / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.f;

  // Under the causal mask, queries before j0 attend none of these keys.
  for (int64_t i0 = p.causal ? j0 : 0; i0 < p.Lq; i0 += kRows) {
    __syncthreads();  // every warp is done with the previous query tile
    load_tile(Qs, LD, kRows, DP, q, b, i0, p.Lq, p.D);
    load_tile(dOs, LD, kRows, DP, dO, b, i0, p.Lq, p.D);
    load_tile(Qt, LDT, kRows, DP, q, b, i0, p.Lq, p.D, /*transpose=*/true);
    load_tile(dOt, LDT, kRows, DP, dO, b, i0, p.Lq, p.D, /*transpose=*/true);
    for (int r = threadIdx.x; r < kRows; r += blockDim.x) {
      const int64_t row = i0 + r;
      lse_s[r] = row < p.Lq ? lse[b * p.Lq + row] * kLog2e : inf;
      d_s[r] = row < p.Lq ? row_dot[b * p.Lq + row] : 0.f;
    }
    __syncthreads();

    float st[kRows / 8][4], dpt[kRows / 8][4];
#pragma unroll
    for (int n = 0; n < kRows / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) st[n][e] = dpt[n][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; ++kk) {
      uint32_t a[4];
      load_a(a, Ks, LD, warp * 16, kk * 16);
#pragma unroll
      for (int n = 0; n < kRows / 8; ++n) mma_bf16(st[n], a, Qs, LD, n * 8, kk * 16);
      load_a(a, Vs, LD, warp * 16, kk * 16);
#pragma unroll
      for (int n = 0; n < kRows / 8; ++n) mma_bf16(dpt[n], a, dOs, LD, n * 8, kk * 16);
    }
    // Element (key, query): st holds P^T after this, dpt holds dS^T.
#pragma unroll
    for (int n = 0; n < kRows / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int c = n * 8 + 2 * t + (e & 1);
        const int64_t row = i0 + c;
        const float prob =
            row < p.Lq && attends(p, row, keys[e >> 1]) ? exp2f(st[n][e] * scale2 - lse_s[c]) : 0.f;
        st[n][e] = prob;
        dpt[n][e] = prob * (dpt[n][e] - d_s[c]);
      }
#pragma unroll
    for (int kk = 0; kk < kRows / 16; ++kk) {
      uint32_t a[4];
      a_from_c(a, st[2 * kk], st[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < DP / 8; ++n) mma_bf16(dv[n], a, dOt, LDT, n * 8, kk * 16);
      a_from_c(a, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < DP / 8; ++n) mma_bf16(dk[n], a, Qt, LDT, n * 8, kk * 16);
    }
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t key = keys[h];
    if (key >= p.Lk) continue;
#pragma unroll
    for (int n = 0; n < DP / 8; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = n * 8 + 2 * t + c;
        if (col >= p.D) continue;
        if (gk) gk[(b * p.Lk + key) * p.D + col] = convert<bf16>(dk[n][2 * h + c] * p.scale);
        if (gv) gv[(b * p.Lk + key) * p.D + col] = convert<bf16>(dv[n][2 * h + c]);
      }
  }
}

template <int DP>
__global__ void __launch_bounds__(kMmaThreads)
    backward_dq_mma_kernel(Problem p, Source<bf16> q, Source<bf16> k, Source<bf16> v,
                           Source<bf16> dO, const float* __restrict__ lse,
                           const float* __restrict__ row_dot, bf16* __restrict__ gq) {
  constexpr int LD = DP + 8;
  constexpr int LDT = kKeys + 8;  // rows of the transposed K tile
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(shared_bytes);  // [kRows][LD]
  uint16_t* dOs = Qs + kRows * LD;                             // [kRows][LD]
  uint16_t* Ks = dOs + kRows * LD;                             // [kKeys][LD]
  uint16_t* Vs = Ks + kKeys * LD;                              // [kKeys][LD]
  uint16_t* Kt = Vs + kKeys * LD;                              // [DP][LDT]

  const int64_t q_tiles = tiles(p.Lq, kRows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t rows[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};
  const float scale2 = p.scale * kLog2e;
  const float inf = __int_as_float(0x7f800000);

  load_tile(Qs, LD, kRows, DP, q, b, i0, p.Lq, p.D);
  load_tile(dOs, LD, kRows, DP, dO, b, i0, p.Lq, p.D);
  float lse2[2], dd[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    lse2[h] = rows[h] < p.Lq ? lse[b * p.Lq + rows[h]] * kLog2e : inf;
    dd[h] = rows[h] < p.Lq ? row_dot[b * p.Lq + rows[h]] : 0.f;
  }
  float dq[DP / 8][4];
#pragma unroll
  for (int n = 0; n < DP / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;

  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kRows);
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeys) {
    __syncthreads();  // every warp is done with the previous key tile
    load_tile(Ks, LD, kKeys, DP, k, b, j0, p.Lk, p.D);
    load_tile(Vs, LD, kKeys, DP, v, b, j0, p.Lk, p.D);
    load_tile(Kt, LDT, kKeys, DP, k, b, j0, p.Lk, p.D, /*transpose=*/true);
    __syncthreads();

    float s[kKeys / 8][4], dp[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; ++kk) {
      uint32_t a[4];
      load_a(a, Qs, LD, warp * 16, kk * 16);
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) mma_bf16(s[n], a, Ks, LD, n * 8, kk * 16);
      load_a(a, dOs, LD, warp * 16, kk * 16);
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) mma_bf16(dp[n], a, Vs, LD, n * 8, kk * 16);
    }
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
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      uint32_t a[4];
      a_from_c(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < DP / 8; ++n) mma_bf16(dq[n], a, Kt, LDT, n * 8, kk * 16);
    }
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (rows[h] >= p.Lq) continue;
    bf16* out_row = gq + (b * p.Lq + rows[h]) * p.D;
#pragma unroll
    for (int n = 0; n < DP / 8; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = n * 8 + 2 * t + c;
        if (col < p.D) out_row[col] = convert<bf16>(dq[n][2 * h + c] * p.scale);
      }
  }
}

template <int DP>
Status launch(const FusedAttentionArgs<bf16>& a, const float* lse, const bf16* grad_out,
              const float* row_dot, bf16* gq, bf16* gk, bf16* gv, cudaStream_t stream) {
  constexpr int LD = DP + 8;
  const Problem p = problem_of(a);
  const Source<bf16> q = source_of(a.q, a.D), k = source_of(a.k, a.D), v = source_of(a.v, a.D);
  const Source<bf16> dO = contiguous_source(grad_out, a.Lq, a.D);
  if ((gk || gv) && a.batch * a.Lk > 0) {
    const size_t bytes = sizeof(uint16_t) * size_t(2 * kKeys * LD + 2 * kRows * LD + 2 * DP * (kRows + 8)) +
                         sizeof(float) * size_t(2 * kRows);
    const int64_t blocks = a.batch * tiles(a.Lk, kKeys);
    SH_RETURN_IF_FAILED(check_grid(blocks, "attention backward_dkdv_mma_kernel"));
    auto kernel = backward_dkdv_mma_kernel<DP>;
    SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention backward_dkdv_mma_kernel"));
    kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(p, q, k, v, dO, lse, row_dot, gk, gv);
    SH_RETURN_IF_FAILED(launch_status("attention backward_dkdv_mma_kernel"));
  }
  if (gq && a.batch * a.Lq > 0) {
    const size_t bytes = sizeof(uint16_t) * size_t(2 * kRows * LD + 2 * kKeys * LD + DP * (kKeys + 8));
    const int64_t blocks = a.batch * tiles(a.Lq, kRows);
    SH_RETURN_IF_FAILED(check_grid(blocks, "attention backward_dq_mma_kernel"));
    auto kernel = backward_dq_mma_kernel<DP>;
    SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention backward_dq_mma_kernel"));
    kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(p, q, k, v, dO, lse, row_dot, gq);
    SH_RETURN_IF_FAILED(launch_status("attention backward_dq_mma_kernel"));
  }
  return ok_status();
}

}  // namespace

Status backward_mma(const FusedAttentionArgs<bf16>& a, const bf16* out, const float* lse,
                    const bf16* grad_out, float* row_dot, bf16* gq, bf16* gk, bf16* gv,
                    cudaStream_t stream) {
  SH_RETURN_IF_FAILED(row_dots(a.batch * a.Lq, a.D, out, grad_out, row_dot, stream));
  if (a.D <= 32) return launch<32>(a, lse, grad_out, row_dot, gq, gk, gv, stream);
  return launch<64>(a, lse, grad_out, row_dot, gq, gk, gv, stream);
}

}  // namespace shallow::cuda::attention_detail
