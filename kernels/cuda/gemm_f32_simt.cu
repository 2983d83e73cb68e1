// f32 GEMM on the CUDA cores: C = epilogue(op(A) op(B)).
//
// Tiling. A block of 256 threads computes a 128 x 128 tile of C; thread (ty, tx) of the 16 x 16
// grid owns 8 x 8 outputs: rows 4 ty + {0..3} and 64 + 4 ty + {0..3}, columns likewise with tx.
// Splitting each thread's 8 rows (and columns) into two runs of 4, 64 apart, lets a warp's
// float4 reads of shared memory cover 64 consecutive floats with no bank conflicts, and keeps
// 16 shared loads for 64 fused multiply-adds per k step.
//
// K is walked in slices of 8. Shared memory holds two slices of A (as [k][m]) and B (as [k][n]):
// while the block multiplies one, each thread has already loaded its part of the next slice
// from global memory into registers and writes it to the other buffer afterwards, so one
// barrier per slice suffices. Global reads are float4 where the layout is aligned and the four
// elements are inside the matrix, single floats (zero past the edges) otherwise.
#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 8, kBlockThreads = 256;
constexpr int kPad = 4;  // keeps float4 alignment; moves the transposing stores off one bank

// Four consecutive elements of a row-major matrix's stored row `r` from column `c` (row stride
// ld; valid part r < r_end, columns < c_end), zero where outside.
__device__ inline float4 load4(const float* g, int64_t ld, int64_t r, int64_t r_end, int64_t c,
                               int64_t c_end, bool vec) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if (r >= r_end) return v;
  const float* p = g + r * ld + c;
  if (vec && c + 3 < c_end) return *reinterpret_cast<const float4*>(p);
  if (c < c_end) v.x = p[0];
  if (c + 1 < c_end) v.y = p[1];
  if (c + 2 < c_end) v.z = p[2];
  if (c + 3 < c_end) v.w = p[3];
  return v;
}

// Thread t's four elements of a slice whose stored rows run along K (the operand "K-major":
// A [M, K] or B stored [N, K]): stored row t / 2 of the tile's 128, columns k0 + 4 (t % 2) + 0..3.
// Otherwise (A stored [K, M], B [K, N]): stored row k0 + t / 32, columns 4 (t % 32) + 0..3.
template <bool kKMajor>
__device__ inline float4 load_slice(const float* g, int64_t ld, int64_t mn0, int64_t mn_end,
                                    int64_t k0, int64_t K, bool vec) {
  const int t = int(threadIdx.x);
  if constexpr (kKMajor) return load4(g, ld, mn0 + t / 2, mn_end, k0 + 4 * (t % 2), K, vec);
  else return load4(g, ld, k0 + t / 32, K, mn0 + 4 * (t % 32), mn_end, vec);
}

// Writes those four elements into the shared slice s[k][m or n].
template <bool kKMajor>
__device__ inline void store_slice(float (*s)[kBM + kPad], float4 v) {
  const int t = int(threadIdx.x);
  if constexpr (kKMajor) {
    const int mn = t / 2, k = 4 * (t % 2);
    s[k][mn] = v.x;
    s[k + 1][mn] = v.y;
    s[k + 2][mn] = v.z;
    s[k + 3][mn] = v.w;
  } else {
    *reinterpret_cast<float4*>(&s[t / 32][4 * (t % 32)]) = v;
  }
}

template <bool kAKMajor, bool kBKMajor>
__global__ void __launch_bounds__(kBlockThreads)
gemm_f32_simt_kernel(int64_t M, int64_t N, int64_t K, const float* __restrict__ A, int64_t lda,
                     int64_t stride_a, const float* __restrict__ B, int64_t ldb, int64_t stride_b,
                     float* __restrict__ C, int64_t ldc, int64_t stride_c, int64_t batch0,
                     bool vec_a, bool vec_b, bool vec_c, DeviceEpilogue<float> ep) {
  static_assert(kBM == kBN, "A and B slices share one shared-memory shape");
  __shared__ __align__(16) float As[2][kBK][kBM + kPad];
  __shared__ __align__(16) float Bs[2][kBK][kBN + kPad];

  const int64_t b = batch0 + blockIdx.z;
  A += b * stride_a;
  B += b * stride_b;
  C += b * stride_c;
  const int64_t m_block = int64_t(blockIdx.y) * kBM, n_block = int64_t(blockIdx.x) * kBN;
  const int tx = int(threadIdx.x) % 16, ty = int(threadIdx.x) / 16;

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  const int64_t k_tiles = (K + kBK - 1) / kBK;
  float4 a_next = load_slice<kAKMajor>(A, lda, m_block, M, 0, K, vec_a);
  float4 b_next = load_slice<kBKMajor>(B, ldb, n_block, N, 0, K, vec_b);
  store_slice<kAKMajor>(As[0], a_next);
  store_slice<kBKMajor>(Bs[0], b_next);
  __syncthreads();

  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    const int cur = int(kt & 1);
    const bool more = kt + 1 < k_tiles;
    if (more) {  // the next slice's global reads overlap this slice's arithmetic
      a_next = load_slice<kAKMajor>(A, lda, m_block, M, (kt + 1) * kBK, K, vec_a);
      b_next = load_slice<kBKMajor>(B, ldb, n_block, N, (kt + 1) * kBK, K, vec_b);
    }
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[cur][k][4 * ty]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[cur][k][64 + 4 * ty]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[cur][k][4 * tx]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[cur][k][64 + 4 * tx]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], bv[j], acc[i][j]);
    }
    if (more) {  // the other buffer was last read before the previous barrier
      store_slice<kAKMajor>(As[cur ^ 1], a_next);
      store_slice<kBKMajor>(Bs[cur ^ 1], b_next);
    }
    __syncthreads();
  }

  // Output (i, j) of the thread is C[m_block + rows(i)][n_block + cols(j)], rows(i) =
  // 4 ty + i for i < 4 and 64 + 4 ty + (i - 4) after; columns likewise in runs of 4.
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t row = m_block + (i < 4 ? 4 * ty + i : 64 + 4 * ty + (i - 4));
    if (row >= M) continue;
    float* c_row = C + row * ldc;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t col = n_block + half * 64 + 4 * tx;
      if (col >= N) continue;
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e)
        v[e] = col + e < N ? ep.finish(acc[i][half * 4 + e], c_row + col + e, row, col + e) : 0.f;
      if (vec_c && col + 3 < N) {
        *reinterpret_cast<float4*>(c_row + col) = make_float4(v[0], v[1], v[2], v[3]);
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (col + e < N) c_row[col + e] = v[e];
      }
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// float4 accesses need every row (and matrix) of the operand to start 16-byte aligned.
bool vector_ok(const void* p, int64_t ld, int64_t stride, int64_t batch) {
  return aligned16(p) && ld % 4 == 0 && (batch <= 1 || stride % 4 == 0);
}

template <bool kAKMajor, bool kBKMajor>
Status launch(int64_t batch, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
              int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float* C,
              int64_t ldc, int64_t stride_c, const DeviceEpilogue<float>& ep,
              cudaStream_t stream) {
  const bool vec_a = vector_ok(A, lda, stride_a, batch), vec_b = vector_ok(B, ldb, stride_b, batch);
  const bool vec_c = vector_ok(C, ldc, stride_c, batch);
  const unsigned gx = unsigned((N + kBN - 1) / kBN), gy = unsigned((M + kBM - 1) / kBM);
  for (int64_t b0 = 0; b0 < batch; b0 += kMaxGridZ) {
    const int64_t nb = batch - b0 < kMaxGridZ ? batch - b0 : kMaxGridZ;
    gemm_f32_simt_kernel<kAKMajor, kBKMajor><<<dim3{gx, gy, unsigned(nb)}, kBlockThreads, 0, stream>>>(
        M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, b0, vec_a, vec_b, vec_c, ep);
    Status s = launch_status("gemm_f32_simt_kernel");
    if (!s.ok()) return s;
  }
  return ok_status();
}

}  // namespace

Status gemm_f32_simt(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                     const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                     int64_t stride_b, float* C, int64_t ldc, int64_t stride_c,
                     const DeviceEpilogue<float>& ep, cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0) return ok_status();
  Status s = check_tile_grid("gemm_f32_simt_kernel", M, N, kBM, kBN);
  if (!s.ok()) return s;
  // A stored [M, K] (not transposed) is K-major; B is K-major when stored [N, K] (transposed).
  const bool a_k_major = !trans_a, b_k_major = trans_b;
  if (a_k_major && b_k_major)
    return launch<true, true>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
  if (a_k_major)
    return launch<true, false>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
  if (b_k_major)
    return launch<false, true>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
  return launch<false, false>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
}

}  // namespace shallow::cuda
