// Fused attention on plain FMA tiles: forward, and the two backward passes (dK/dV per key
// tile, dQ per query tile), for float and bf16 operands computed in f32.
//
// A block has 256 threads seen as a 16 x 16 grid (ty, tx). In a 64 x 64 tile of scores the
// thread owns rows ty*4 + i and columns tx + 16*j (i, j < 4): the 16 threads sharing a row sit
// in one half-warp, so row maxima and sums are warp shuffles. In a 64 x D tile of outputs it
// owns rows ty*4 + i and columns tx + 16*j (j < NJ = ceil(D / 16)). Tiles live in shared
// memory as f32 rows of D + 1 floats (the odd stride spreads a column over all banks).
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"

namespace shallow::cuda::attention_detail {
namespace {

constexpr int kSimtThreads = 256;
constexpr int kPld = kKeys + 1;  // row stride of a 64 x 64 tile of probabilities in shared memory

__device__ inline int tile_tx() { return threadIdx.x & 15; }
__device__ inline int tile_ty() { return threadIdx.x >> 4; }

// Over the 16 threads of a half-warp (the threads sharing a row).
__device__ inline float row_max(float v) {
  for (int off = 8; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
__device__ inline float row_sum(float v) {
  for (int off = 8; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// acc[i][j] = A_(ty*4+i) . B_(tx+16j) over D: rows of two row-major tiles (stride ld).
__device__ inline void dot_tile(float (&acc)[4][4], const float* A, const float* B, int ld, int D) {
  const int tx = tile_tx(), ty = tile_ty();
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
  for (int d = 0; d < D; ++d) {
    float a[4], b[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = A[(ty * 4 + i) * ld + d];
#pragma unroll
    for (int j = 0; j < 4; ++j) b[j] = B[(tx + 16 * j) * ld + d];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

// acc[i][j] += sum_k P[ty*4+i][k] * V[k][tx+16j] for k < n: a 64 x 64 tile (stride kPld) times
// a 64 x D tile (stride ld). Columns at or past D are left alone.
template <int NJ>
__device__ inline void product_tile(float (&acc)[4][NJ], const float* P, const float* V, int ld,
                                    int D, int n) {
  const int tx = tile_tx(), ty = tile_ty();
  for (int k = 0; k < n; ++k) {
    float p[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) p[i] = P[(ty * 4 + i) * kPld + k];
#pragma unroll
    for (int j = 0; j < NJ; ++j) {
      if (tx + 16 * j >= D) break;
      const float x = V[k * ld + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[i][j] = fmaf(p[i], x, acc[i][j]);
    }
  }
}

// Writes acc * factor into rows [row0 + ty*4 + i] of a contiguous [batch, L, D] block.
template <class T, int NJ>
__device__ inline void store_tile(T* dst, int64_t b, int64_t row0, int64_t L, int D,
                                  const float (&acc)[4][NJ], float factor) {
  const int tx = tile_tx(), ty = tile_ty();
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = row0 + ty * 4 + i;
    if (row >= L) continue;
#pragma unroll
    for (int j = 0; j < NJ; ++j) {
      const int c = tx + 16 * j;
      if (c < D) dst[(b * L + row) * D + c] = convert<T>(acc[i][j] * factor);
    }
  }
}

template <class T, int NJ>
__global__ void __launch_bounds__(kSimtThreads)
    forward_kernel(Problem p, Source<T> q, Source<T> k, Source<T> v, T* __restrict__ out,
                   float* __restrict__ lse) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  const int D = p.D, ld = D + 1;
  float* Qs = reinterpret_cast<float*>(shared_bytes);
  float* Ks = Qs + kRows * ld;
  float* Vs = Ks + kKeys * ld;
  float* Ps = Vs + kKeys * ld;
  const int tx = tile_tx(), ty = tile_ty();
  const int64_t q_tiles = tiles(p.Lq, kRows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kRows;

  load_tile(Qs, ld, kRows, D, q, b, i0, p.Lq, D);
  const float inf = __int_as_float(0x7f800000);
  float m[4], l[4], o[4][NJ];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -inf;
    l[i] = 0.f;
#pragma unroll
    for (int j = 0; j < NJ; ++j) o[i][j] = 0.f;
  }

  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kRows);
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeys) {
    __syncthreads();  // the previous tile's readers are done with Ks, Vs and Ps
    load_tile(Ks, ld, kKeys, D, k, b, j0, p.Lk, D);
    load_tile(Vs, ld, kKeys, D, v, b, j0, p.Lk, D);
    __syncthreads();
    float s[4][4];
    dot_tile(s, Qs, Ks, ld, D);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t row = i0 + ty * 4 + i;
      float mx = -inf;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s[i][j] = attends(p, row, j0 + tx + 16 * j) ? s[i][j] * p.scale : -inf;
        mx = fmaxf(mx, s[i][j]);
      }
      // Online softmax: what was summed under the old maximum is rescaled to the new one.
      // While a row has attended nothing its maximum is -inf; 0 stands in for it so that no
      // inf - inf appears and the masked scores give exp(-inf) = 0.
      const float m_new = fmaxf(m[i], row_max(mx));
      const float m_use = m_new == -inf ? 0.f : m_new;
      const float alpha = expf(m[i] - m_use);
      m[i] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float e = expf(s[i][j] - m_use);
        Ps[(ty * 4 + i) * kPld + tx + 16 * j] = e;
        sum += e;
      }
      l[i] = l[i] * alpha + sum;  // this thread's part of the row sum; alpha is the row's
#pragma unroll
      for (int j = 0; j < NJ; ++j) o[i][j] *= alpha;
    }
    __syncthreads();
    const int64_t keys = j_end - j0 < kKeys ? j_end - j0 : kKeys;
    product_tile(o, Ps, Vs, ld, D, int(keys));
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float total = row_sum(l[i]);
    const int64_t row = i0 + ty * 4 + i;
    if (row < p.Lq && tx == 0) lse[b * p.Lq + row] = total > 0.f ? m[i] + logf(total) : inf;
    l[i] = total > 0.f ? 1.f / total : 0.f;  // a row that attends nothing gives zeros
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = i0 + ty * 4 + i;
    if (row >= p.Lq) continue;
#pragma unroll
    for (int j = 0; j < NJ; ++j) {
      const int c = tx + 16 * j;
      if (c < D) out[(b * p.Lq + row) * D + c] = convert<T>(o[i][j] * l[i]);
    }
  }
}

// row_dot[r] = grad_out_r . out_r: a warp per row.
template <class T>
__global__ void row_dot_kernel(int64_t rows, int D, const T* __restrict__ out,
                               const T* __restrict__ grad_out, float* __restrict__ row_dot) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = grid_threads() / 32;
  for (int64_t r = global_thread() / 32; r < rows; r += warps) {
    float s = 0.f;
    for (int c = lane; c < D; c += 32)
      s += float(widen(out[r * D + c])) * float(widen(grad_out[r * D + c]));
    s = warp_sum(s);
    if (lane == 0) row_dot[r] = s;
  }
}

// dQ for 64 query rows: dQ_i = scale * sum_j dS_ij k_j, dS = P * (dO v^T - D).
template <class T, int NJ>
__global__ void __launch_bounds__(kSimtThreads)
    backward_dq_kernel(Problem p, Source<T> q, Source<T> k, Source<T> v, Source<T> dO,
                       const float* __restrict__ lse, const float* __restrict__ row_dot,
                       T* __restrict__ gq) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  const int D = p.D, ld = D + 1;
  float* Qs = reinterpret_cast<float*>(shared_bytes);
  float* dOs = Qs + kRows * ld;
  float* Ks = dOs + kRows * ld;
  float* Vs = Ks + kKeys * ld;
  float* dSs = Vs + kKeys * ld;
  const int tx = tile_tx(), ty = tile_ty();
  const int64_t q_tiles = tiles(p.Lq, kRows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kRows;

  load_tile(Qs, ld, kRows, D, q, b, i0, p.Lq, D);
  load_tile(dOs, ld, kRows, D, dO, b, i0, p.Lq, D);
  const float inf = __int_as_float(0x7f800000);
  float row_lse[4], row_d[4], dq[4][NJ];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = i0 + ty * 4 + i;
    row_lse[i] = row < p.Lq ? lse[b * p.Lq + row] : inf;
    row_d[i] = row < p.Lq ? row_dot[b * p.Lq + row] : 0.f;
#pragma unroll
    for (int j = 0; j < NJ; ++j) dq[i][j] = 0.f;
  }

  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kRows);
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeys) {
    __syncthreads();
    load_tile(Ks, ld, kKeys, D, k, b, j0, p.Lk, D);
    load_tile(Vs, ld, kKeys, D, v, b, j0, p.Lk, D);
    __syncthreads();
    float s[4][4], dp[4][4];
    dot_tile(s, Qs, Ks, ld, D);
    dot_tile(dp, dOs, Vs, ld, D);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t row = i0 + ty * 4 + i;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float prob = attends(p, row, j0 + tx + 16 * j) ? expf(s[i][j] * p.scale - row_lse[i]) : 0.f;
        dSs[(ty * 4 + i) * kPld + tx + 16 * j] = prob * (dp[i][j] - row_d[i]);
      }
    }
    __syncthreads();
    const int64_t keys = j_end - j0 < kKeys ? j_end - j0 : kKeys;
    product_tile(dq, dSs, Ks, ld, D, int(keys));
  }
  store_tile(gq, b, i0, p.Lq, D, dq, p.scale);
}

// dK and dV for 64 keys: dV_j = sum_i P_ij dO_i, dK_j = scale * sum_i dS_ij q_i. Here the
// thread's score tile is transposed: rows are keys (ty*4 + i), columns queries (tx + 16j).
template <class T, int NJ>
__global__ void __launch_bounds__(kSimtThreads)
    backward_dkdv_kernel(Problem p, Source<T> q, Source<T> k, Source<T> v, Source<T> dO,
                         const float* __restrict__ lse, const float* __restrict__ row_dot,
                         T* __restrict__ gk, T* __restrict__ gv) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  const int D = p.D, ld = D + 1;
  float* Ks = reinterpret_cast<float*>(shared_bytes);
  float* Vs = Ks + kKeys * ld;
  float* Qs = Vs + kKeys * ld;
  float* dOs = Qs + kRows * ld;
  float* Pt = dOs + kRows * ld;
  float* dSt = Pt + kKeys * kPld;
  float* lse_s = dSt + kKeys * kPld;
  float* d_s = lse_s + kRows;
  const int tx = tile_tx(), ty = tile_ty();
  const int64_t k_tiles = tiles(p.Lk, kKeys);
  const int64_t b = blockIdx.x / k_tiles, j0 = (blockIdx.x % k_tiles) * kKeys;

  load_tile(Ks, ld, kKeys, D, k, b, j0, p.Lk, D);
  load_tile(Vs, ld, kKeys, D, v, b, j0, p.Lk, D);
  const float inf = __int_as_float(0x7f800000);
  float dk[4][NJ], dv[4][NJ];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < NJ; ++j) dk[i][j] = dv[i][j] = 0.f;

  // Under the causal mask, queries before j0 attend none of these keys.
  for (int64_t i0 = p.causal ? j0 : 0; i0 < p.Lq; i0 += kRows) {
    __syncthreads();  // the previous query tile's readers are done
    load_tile(Qs, ld, kRows, D, q, b, i0, p.Lq, D);
    load_tile(dOs, ld, kRows, D, dO, b, i0, p.Lq, D);
    for (int r = threadIdx.x; r < kRows; r += blockDim.x) {
      const int64_t row = i0 + r;
      lse_s[r] = row < p.Lq ? lse[b * p.Lq + row] : inf;
      d_s[r] = row < p.Lq ? row_dot[b * p.Lq + row] : 0.f;
    }
    __syncthreads();
    float st[4][4], dpt[4][4];
    dot_tile(st, Ks, Qs, ld, D);
    dot_tile(dpt, Vs, dOs, ld, D);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t key = j0 + ty * 4 + i;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = tx + 16 * j;
        const int64_t row = i0 + c;
        const float prob =
            row < p.Lq && attends(p, row, key) ? expf(st[i][j] * p.scale - lse_s[c]) : 0.f;
        Pt[(ty * 4 + i) * kPld + c] = prob;
        dSt[(ty * 4 + i) * kPld + c] = prob * (dpt[i][j] - d_s[c]);
      }
    }
    __syncthreads();
    const int64_t rows = p.Lq - i0 < kRows ? p.Lq - i0 : kRows;
    product_tile(dv, Pt, dOs, ld, D, int(rows));
    product_tile(dk, dSt, Qs, ld, D, int(rows));
  }
  if (gk) store_tile(gk, b, j0, p.Lk, D, dk, p.scale);
  if (gv) store_tile(gv, b, j0, p.Lk, D, dv, 1.f);
}

// Calls f with the column-group count NJ (a compile-time constant) for head dim D.
template <class F>
Status with_column_groups(int D, F&& f) {
  if (D <= 32) return f(std::integral_constant<int, 2>{});
  if (D <= 64) return f(std::integral_constant<int, 4>{});
  return f(std::integral_constant<int, 8>{});
}

}  // namespace

template <class T>
Status forward_simt(const FusedAttentionArgs<T>& a, T* out, float* lse, cudaStream_t stream) {
  const Problem p = problem_of(a);
  const int ld = a.D + 1;
  const size_t bytes = sizeof(float) * size_t(kRows * ld + 2 * kKeys * ld + kRows * kPld);
  const int64_t blocks = a.batch * tiles(a.Lq, kRows);
  if (blocks == 0) return ok_status();
  SH_RETURN_IF_FAILED(check_grid(blocks, "attention forward_kernel"));
  return with_column_groups(a.D, [&](auto nj) -> Status {
    auto kernel = forward_kernel<T, decltype(nj)::value>;
    SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention forward_kernel"));
    kernel<<<unsigned(blocks), kSimtThreads, bytes, stream>>>(
        p, source_of(a.q, a.D), source_of(a.k, a.D), source_of(a.v, a.D), out, lse);
    return launch_status("attention forward_kernel");
  });
}

template <class T>
Status row_dots(int64_t rows, int D, const T* out, const T* grad_out, float* row_dot,
                cudaStream_t stream) {
  if (rows == 0) return ok_status();
  row_dot_kernel<T><<<blocks_for(rows * 32), kThreads, 0, stream>>>(rows, D, out, grad_out, row_dot);
  return launch_status("attention row_dot_kernel");
}

template <class T>
Status backward_simt(const FusedAttentionArgs<T>& a, const T* out, const float* lse,
                     const T* grad_out, float* row_dot, T* gq, T* gk, T* gv, cudaStream_t stream) {
  const Problem p = problem_of(a);
  const int ld = a.D + 1;
  const Source<T> q = source_of(a.q, a.D), k = source_of(a.k, a.D), v = source_of(a.v, a.D);
  const Source<T> dO = contiguous_source(grad_out, a.Lq, a.D);

  SH_RETURN_IF_FAILED(row_dots(a.batch * a.Lq, a.D, out, grad_out, row_dot, stream));

  return with_column_groups(a.D, [&](auto nj) -> Status {
    constexpr int NJ = decltype(nj)::value;
    if ((gk || gv) && a.batch * a.Lk > 0) {
      const size_t bytes = sizeof(float) * size_t(2 * kKeys * ld + 2 * kRows * ld + 2 * kKeys * kPld + 2 * kRows);
      const int64_t blocks = a.batch * tiles(a.Lk, kKeys);
      SH_RETURN_IF_FAILED(check_grid(blocks, "attention backward_dkdv_kernel"));
      auto kernel = backward_dkdv_kernel<T, NJ>;
      SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention backward_dkdv_kernel"));
      kernel<<<unsigned(blocks), kSimtThreads, bytes, stream>>>(p, q, k, v, dO, lse, row_dot, gk, gv);
      SH_RETURN_IF_FAILED(launch_status("attention backward_dkdv_kernel"));
    }
    if (gq && a.batch * a.Lq > 0) {
      const size_t bytes = sizeof(float) * size_t(2 * kRows * ld + 2 * kKeys * ld + kRows * kPld);
      const int64_t blocks = a.batch * tiles(a.Lq, kRows);
      SH_RETURN_IF_FAILED(check_grid(blocks, "attention backward_dq_kernel"));
      auto kernel = backward_dq_kernel<T, NJ>;
      SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention backward_dq_kernel"));
      kernel<<<unsigned(blocks), kSimtThreads, bytes, stream>>>(p, q, k, v, dO, lse, row_dot, gq);
      SH_RETURN_IF_FAILED(launch_status("attention backward_dq_kernel"));
    }
    return ok_status();
  });
}

#define SH_INSTANTIATE(T)                                                                        \
  template Status row_dots<T>(int64_t, int, const T*, const T*, float*, cudaStream_t);          \
  template Status forward_simt<T>(const FusedAttentionArgs<T>&, T*, float*, cudaStream_t);      \
  template Status backward_simt<T>(const FusedAttentionArgs<T>&, const T*, const float*,        \
                                   const T*, float*, T*, T*, T*, cudaStream_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(cpu::bf16)
#undef SH_INSTANTIATE

}  // namespace shallow::cuda::attention_detail
