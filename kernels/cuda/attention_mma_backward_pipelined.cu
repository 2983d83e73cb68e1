// Fused attention backward for bf16 on tensor cores, pipelined: the two deterministic passes of
// attention_mma_backward.cu (same blocks, same products, same rounding of P and dS to bf16),
// with the operands moved the way attention_mma_pipelined.cu moves them:
//   - the tiles walked by the loop are copied with cp.async into two shared-memory buffers,
//     tile i + 1 in flight while tile i is computed;
//   - the block's own rows (K and V in pass 1, Q and dO in pass 2) are A fragments kept in
//     registers for the whole loop;
//   - B fragments come from ldmatrix (row-major tiles: K^T, Q^T, dO^T, V^T products) and
//     ldmatrix.trans (the products with dO, Q and K as B), so no tile is stored transposed;
//   - the walked tile's log-sum-exp and row dots (pass 1) are loaded into registers one tile
//     ahead and written to shared memory beside their buffer.
//
//   pass 1, a block per 64 keys, over the query tiles:
//     S^T = K Q^T, dP^T = V dO^T, P^T = exp(scale S^T - lse), dS^T = P^T * (dP^T - D)
//     dV += P^T dO, dK += dS^T Q
//   pass 2, a block per 64 queries, over the key tiles:
//     S = Q K^T, dP = dO V^T, dS = P * (dP - D), dQ += dS K
//
// Only for operands that Source::vec allows (16-byte aligned rows, D a multiple of 8) and head
// dims up to 128 (padded to DP = 32, 64 or 128; at 128 the block's own rows are read from
// shared memory at each tile instead of being kept in registers); backward_mma in
// attention_mma_backward.cu (D <= 64) or the FMA tiles take the others.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/attention_mma.cuh"

namespace shallow::cuda::attention_detail {
namespace {

using cpu::bf16;

constexpr float kLog2e = 1.4426950408889634f;
static_assert(kMmaThreads == 2 * kRows, "pass 1 reads a tile's lse and row dots with one thread each");

// acc[n] += a * B over 64 columns, where B's column n is row n of `tile` (rows of LD): S^T
// from Q rows, dP^T from dO rows, S from K rows, dP from V rows. One ldmatrix.x4 gives the B
// fragments of two 8-row blocks over 16 dims.
template <int DP, int LD>
__device__ inline void product_with_rows(float (&acc)[8][4], const uint32_t (&a)[DP / 16][4],
                                         const uint16_t* tile) {
  const int lane = threadIdx.x & 31, mat = lane >> 3, mrow = lane & 7;
#pragma unroll
  for (int kk = 0; kk < DP / 16; ++kk)
#pragma unroll
    for (int np = 0; np < 4; ++np) {
      uint32_t b[4];
      const int row = np * 16 + (mat >> 1) * 8 + mrow, dim = kk * 16 + (mat & 1) * 8;
      ldmatrix_x4(b, tile + row * LD + dim);
      mma_bf16_regs(acc[2 * np], a[kk], b[0], b[1]);
      mma_bf16_regs(acc[2 * np + 1], a[kk], b[2], b[3]);
    }
}

// The same with the A fragments read from shared memory (rows [a_row0, a_row0 + 16) of
// a_tile) as they are needed: at DP = 128 the block's own rows would take 64 more registers
// per thread, which spills.
template <int DP, int LD>
__device__ inline void product_with_rows(float (&acc)[8][4], const uint16_t* a_tile, int a_row0,
                                         const uint16_t* tile) {
  const int lane = threadIdx.x & 31, mat = lane >> 3, mrow = lane & 7;
#pragma unroll
  for (int kk = 0; kk < DP / 16; ++kk) {
    uint32_t a[4];
    load_a(a, a_tile, LD, a_row0, kk * 16);
#pragma unroll
    for (int np = 0; np < 4; ++np) {
      uint32_t b[4];
      const int row = np * 16 + (mat >> 1) * 8 + mrow, dim = kk * 16 + (mat & 1) * 8;
      ldmatrix_x4(b, tile + row * LD + dim);
      mma_bf16_regs(acc[2 * np], a, b[0], b[1]);
      mma_bf16_regs(acc[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// Whether a kernel keeps its block's own rows as A fragments in registers (DP up to 64).
template <int DP>
constexpr bool kKeepRows = DP <= 64;

// out[n] += C * tile, where C (16 x 64, accumulators rounded to bf16) multiplies the 64 rows
// of `tile` (rows of LD, DP columns): dV from dO, dK from Q, dQ from K. ldmatrix.trans gives
// the B fragments of two 8-dim blocks over 16 rows.
template <int DP, int LD>
__device__ inline void product_into(float (&out)[DP / 8][4], const float (&c)[8][4],
                                    const uint16_t* tile) {
  const int lane = threadIdx.x & 31, mat = lane >> 3, mrow = lane & 7;
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    uint32_t a[4];
    a_from_c(a, c[2 * kk], c[2 * kk + 1]);
#pragma unroll
    for (int np = 0; np < DP / 16; ++np) {
      uint32_t b[4];
      const int row = kk * 16 + (mat & 1) * 8 + mrow, dim = np * 16 + (mat >> 1) * 8;
      ldmatrix_x4_trans(b, tile + row * LD + dim);
      mma_bf16_regs(out[2 * np], a, b[0], b[1]);
      mma_bf16_regs(out[2 * np + 1], a, b[2], b[3]);
    }
  }
}

template <int DP>
__global__ void __launch_bounds__(kMmaThreads, 2)
    backward_dkdv_pipelined_kernel(Problem p, Source<bf16> q, Source<bf16> k, Source<bf16> v,
                                   Source<bf16> dO, const float* __restrict__ lse,
                                   const float* __restrict__ row_dot, bf16* __restrict__ gk,
                                   bf16* __restrict__ gv) {
  constexpr int LD = DP + 8;
  constexpr int kTile = kRows * LD;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint16_t* Ks = reinterpret_cast<uint16_t*>(shared_bytes);  // [kKeys][LD]
  uint16_t* Vs = Ks + kKeys * LD;                              // [kKeys][LD]
  uint16_t* Qs = Vs + kKeys * LD;                              // [2][kRows][LD]
  uint16_t* dOs = Qs + 2 * kTile;                              // [2][kRows][LD]
  float* lse_s = reinterpret_cast<float*>(dOs + 2 * kTile);    // [2][kRows], base 2
  float* d_s = lse_s + 2 * kRows;                              // [2][kRows]

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
  copy_rows_async(Ks, LD, kKeys, k, b, j0, p.Lk, p.D);
  copy_rows_async(Vs, LD, kKeys, v, b, j0, p.Lk, p.D);
  if (i_begin < p.Lq) {
    copy_rows_async(Qs, LD, kRows, q, b, i_begin, p.Lq, p.D);
    copy_rows_async(dOs, LD, kRows, dO, b, i_begin, p.Lq, p.D);
    store_row_value(0, row_value(i_begin));
  }
  cp_async_commit();

  float dk[DP / 8][4], dv[DP / 8][4];
#pragma unroll
  for (int n = 0; n < DP / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.f;
  uint32_t kf[kKeepRows<DP> ? DP / 16 : 1][4], vf[kKeepRows<DP> ? DP / 16 : 1][4];

  int buf = 0;
  for (int64_t i0 = i_begin; i0 < p.Lq; i0 += kRows, buf ^= 1) {
    const bool has_next = i0 + kRows < p.Lq;
    float next_value = 0.f;
    if (has_next) {  // the other buffer was released by the barrier at the end of the last tile
      copy_rows_async(Qs + (buf ^ 1) * kTile, LD, kRows, q, b, i0 + kRows, p.Lq, p.D);
      copy_rows_async(dOs + (buf ^ 1) * kTile, LD, kRows, dO, b, i0 + kRows, p.Lq, p.D);
      cp_async_commit();
      next_value = row_value(i0 + kRows);  // used at the end of this tile: its latency hides
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // tile i (and K, V, the padding, its row values) visible to every thread

    // A warp whose 16 keys are all past Lk only helps with the copies.
    if (warp_has_keys) {
      if constexpr (kKeepRows<DP>) {
        if (i0 == i_begin) {
#pragma unroll
          for (int kk = 0; kk < DP / 16; ++kk) {
            load_a(kf[kk], Ks, LD, warp * 16, kk * 16);
            load_a(vf[kk], Vs, LD, warp * 16, kk * 16);
          }
        }
      }
      const uint16_t* Qb = Qs + buf * kTile;
      const uint16_t* dOb = dOs + buf * kTile;
      const float* lse_b = lse_s + buf * kRows;
      const float* d_b = d_s + buf * kRows;

      float st[8][4], dpt[8][4];
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) st[n][e] = dpt[n][e] = 0.f;
      if constexpr (kKeepRows<DP>) {
        product_with_rows<DP, LD>(st, kf, Qb);
        product_with_rows<DP, LD>(dpt, vf, dOb);
      } else {
        product_with_rows<DP, LD>(st, Ks, warp * 16, Qb);
        product_with_rows<DP, LD>(dpt, Vs, warp * 16, dOb);
      }
      // Element (key, query): st holds P^T after this, dpt holds dS^T.
#pragma unroll
      for (int n = 0; n < 8; ++n)
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

    if (has_next) store_row_value(buf ^ 1, next_value);  // that buffer is not read in this tile
    __syncthreads();  // every warp is done with this buffer before the next copy into it
  }
  cp_async_wait<0>();  // with no query tile, the copies of K and V are still owed

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t key = keys[h];
    if (key >= p.Lk) continue;
#pragma unroll
    for (int n = 0; n < DP / 8; ++n) {
      const int col = n * 8 + 2 * t;  // even, and D is a multiple of 8: col + 1 < D with col
      if (col >= p.D) continue;
      const int64_t at = (b * p.Lk + key) * p.D + col;
      if (gk)
        *reinterpret_cast<uint32_t*>(gk + at) =
            pack_bf16(dk[n][2 * h] * p.scale, dk[n][2 * h + 1] * p.scale);
      if (gv) *reinterpret_cast<uint32_t*>(gv + at) = pack_bf16(dv[n][2 * h], dv[n][2 * h + 1]);
    }
  }
}

template <int DP>
__global__ void __launch_bounds__(kMmaThreads, 2)
    backward_dq_pipelined_kernel(Problem p, Source<bf16> q, Source<bf16> k, Source<bf16> v,
                                 Source<bf16> dO, const float* __restrict__ lse,
                                 const float* __restrict__ row_dot, bf16* __restrict__ gq) {
  constexpr int LD = DP + 8;
  constexpr int kTile = kKeys * LD;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(shared_bytes);  // [kRows][LD]
  uint16_t* dOs = Qs + kRows * LD;                             // [kRows][LD]
  uint16_t* Ks = dOs + kRows * LD;                             // [2][kKeys][LD]
  uint16_t* Vs = Ks + 2 * kTile;                               // [2][kKeys][LD]

  const int64_t q_tiles = tiles(p.Lq, kRows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t rows[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};
  const float scale2 = p.scale * kLog2e;
  const float inf = __int_as_float(0x7f800000);
  const bool warp_has_rows = i0 + warp * 16 < p.Lq;

  zero_padding<DP, LD>(Qs, 2 * kRows + 4 * kKeys, p.D);  // Q, dO, both K and both V buffers
  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kRows);
  copy_rows_async(Qs, LD, kRows, q, b, i0, p.Lq, p.D);
  copy_rows_async(dOs, LD, kRows, dO, b, i0, p.Lq, p.D);
  if (j_end > 0) {
    copy_rows_async(Ks, LD, kKeys, k, b, 0, p.Lk, p.D);
    copy_rows_async(Vs, LD, kKeys, v, b, 0, p.Lk, p.D);
  }
  cp_async_commit();

  float lse2[2], dd[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    lse2[h] = rows[h] < p.Lq ? lse[b * p.Lq + rows[h]] * kLog2e : inf;
    dd[h] = rows[h] < p.Lq ? row_dot[b * p.Lq + rows[h]] : 0.f;
  }
  float dq[DP / 8][4];
#pragma unroll
  for (int n = 0; n < DP / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
  uint32_t qf[kKeepRows<DP> ? DP / 16 : 1][4], dof[kKeepRows<DP> ? DP / 16 : 1][4];

  int buf = 0;
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeys, buf ^= 1) {
    const bool has_next = j0 + kKeys < j_end;
    if (has_next) {
      copy_rows_async(Ks + (buf ^ 1) * kTile, LD, kKeys, k, b, j0 + kKeys, p.Lk, p.D);
      copy_rows_async(Vs + (buf ^ 1) * kTile, LD, kKeys, v, b, j0 + kKeys, p.Lk, p.D);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    // A warp whose 16 rows are all past Lq only helps with the copies.
    if (warp_has_rows) {
      if constexpr (kKeepRows<DP>) {
        if (j0 == 0) {
#pragma unroll
          for (int kk = 0; kk < DP / 16; ++kk) {
            load_a(qf[kk], Qs, LD, warp * 16, kk * 16);
            load_a(dof[kk], dOs, LD, warp * 16, kk * 16);
          }
        }
      }
      const uint16_t* Kb = Ks + buf * kTile;
      const uint16_t* Vb = Vs + buf * kTile;
      float s[8][4], dp[8][4];
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.f;
      if constexpr (kKeepRows<DP>) {
        product_with_rows<DP, LD>(s, qf, Kb);
        product_with_rows<DP, LD>(dp, dof, Vb);
      } else {
        product_with_rows<DP, LD>(s, Qs, warp * 16, Kb);
        product_with_rows<DP, LD>(dp, dOs, warp * 16, Vb);
      }
      // s holds dS after this.
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t col = j0 + n * 8 + 2 * t + (e & 1);
          const int h = e >> 1;
          const float prob = attends(p, rows[h], col) ? exp2f(s[n][e] * scale2 - lse2[h]) : 0.f;
          s[n][e] = prob * (dp[n][e] - dd[h]);
        }
      product_into<DP, LD>(dq, s, Kb);
    }
    __syncthreads();
  }
  cp_async_wait<0>();  // with no key tile, the copies of Q and dO are still owed

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (rows[h] >= p.Lq) continue;
    bf16* out_row = gq + (b * p.Lq + rows[h]) * p.D;
#pragma unroll
    for (int n = 0; n < DP / 8; ++n) {
      const int col = n * 8 + 2 * t;
      if (col < p.D)
        *reinterpret_cast<uint32_t*>(out_row + col) =
            pack_bf16(dq[n][2 * h] * p.scale, dq[n][2 * h + 1] * p.scale);
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
    const size_t bytes = sizeof(uint16_t) * size_t((2 * kKeys + 4 * kRows) * LD) +
                         sizeof(float) * size_t(4 * kRows);
    const int64_t blocks = a.batch * tiles(a.Lk, kKeys);
    SH_RETURN_IF_FAILED(check_grid(blocks, "attention backward_dkdv_pipelined_kernel"));
    auto kernel = backward_dkdv_pipelined_kernel<DP>;
    SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention backward_dkdv_pipelined_kernel"));
    kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(p, q, k, v, dO, lse, row_dot, gk, gv);
    SH_RETURN_IF_FAILED(launch_status("attention backward_dkdv_pipelined_kernel"));
  }
  if (gq && a.batch * a.Lq > 0) {
    const size_t bytes = sizeof(uint16_t) * size_t((2 * kRows + 4 * kKeys) * LD);
    const int64_t blocks = a.batch * tiles(a.Lq, kRows);
    SH_RETURN_IF_FAILED(check_grid(blocks, "attention backward_dq_pipelined_kernel"));
    auto kernel = backward_dq_pipelined_kernel<DP>;
    SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention backward_dq_pipelined_kernel"));
    kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(p, q, k, v, dO, lse, row_dot, gq);
    SH_RETURN_IF_FAILED(launch_status("attention backward_dq_pipelined_kernel"));
  }
  return ok_status();
}

}  // namespace

bool can_backward_mma_pipelined(const FusedAttentionArgs<bf16>& a, const bf16* grad_out,
                                const bf16* gq, const bf16* gk, const bf16* gv) {
  auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  return a.D <= kMmaPipelinedBackwardMaxD && source_of(a.q, a.D).vec && source_of(a.k, a.D).vec &&
         source_of(a.v, a.D).vec && contiguous_source(grad_out, a.Lq, a.D).vec && aligned(gq) &&
         aligned(gk) && aligned(gv);
}

Status backward_mma_pipelined(const FusedAttentionArgs<bf16>& a, const bf16* out,
                              const float* lse, const bf16* grad_out, float* row_dot, bf16* gq,
                              bf16* gk, bf16* gv, cudaStream_t stream) {
  SH_RETURN_IF_FAILED(row_dots(a.batch * a.Lq, a.D, out, grad_out, row_dot, stream));
  if (a.D <= 32) return launch<32>(a, lse, grad_out, row_dot, gq, gk, gv, stream);
  if (a.D <= 64) return launch<64>(a, lse, grad_out, row_dot, gq, gk, gv, stream);
  return launch<128>(a, lse, grad_out, row_dot, gq, gk, gv, stream);
}

}  // namespace shallow::cuda::attention_detail
