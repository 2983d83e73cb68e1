// The general GEMM on the CUDA cores, for any element type (float, double, bf16 accumulated in
// f32) and any layout: f64, and the bf16 operands the tensor-core kernel cannot read (rows not
// 16-byte aligned).
//
// Tiling. A block computes a 64 x 64 tile of C with 256 threads, each owning 4 x 4 outputs. The
// outputs of thread (ty, tx) are rows ty + 16 i and columns tx + 16 j: neighbouring threads
// then read neighbouring shared-memory words (no bank conflicts) and write neighbouring
// columns of C (coalesced). K is walked in slices of 16, each slice of A and B staged in
// shared memory (in the accumulation type), zero-filled past the matrix edges.
#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kTile = 16, kPer = 4;
constexpr int kGemmThreads = kTile * kTile;

template <class T>
using acc_type = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <class T>
__global__ void __launch_bounds__(kGemmThreads)
gemm_simt_kernel(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                 const T* __restrict__ A, int64_t lda, int64_t stride_a, const T* __restrict__ B,
                 int64_t ldb, int64_t stride_b, T* __restrict__ C, int64_t ldc, int64_t stride_c,
                 int64_t batch0, DeviceEpilogue<T> ep) {
  using Acc = acc_type<T>;
  // +1 column of padding: the transposed loads then store to distinct banks.
  __shared__ Acc As[kBK][kBM + 1];
  __shared__ Acc Bs[kBK][kBN + 1];

  const int64_t b = batch0 + blockIdx.z;
  A += b * stride_a;
  B += b * stride_b;
  C += b * stride_c;
  const int64_t row0 = int64_t(blockIdx.y) * kBM, col0 = int64_t(blockIdx.x) * kBN;
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;

  Acc acc[kPer][kPer];
  for (int i = 0; i < kPer; ++i)
    for (int j = 0; j < kPer; ++j) acc[i][j] = Acc(0);

  for (int64_t k0 = 0; k0 < K; k0 += kBK) {
    // Stage A[row0 : row0+64, k0 : k0+16] as As[k][m]. The element order follows memory:
    // k fastest when A is stored [M, K], m fastest when it is stored [K, M] (transposed).
    for (int e = threadIdx.x; e < kBM * kBK; e += kGemmThreads) {
      const int m = trans_a ? e % kBM : e / kBK;
      const int k = trans_a ? e / kBM : e % kBK;
      const int64_t gm = row0 + m, gk = k0 + k;
      Acc v = Acc(0);
      if (gm < M && gk < K) v = widen(trans_a ? A[gk * lda + gm] : A[gm * lda + gk]);
      As[k][m] = v;
    }
    // Stage B[k0 : k0+16, col0 : col0+64] as Bs[k][n], in memory order likewise.
    for (int e = threadIdx.x; e < kBK * kBN; e += kGemmThreads) {
      const int n = trans_b ? e / kBK : e % kBN;
      const int k = trans_b ? e % kBK : e / kBN;
      const int64_t gn = col0 + n, gk = k0 + k;
      Acc v = Acc(0);
      if (gn < N && gk < K) v = widen(trans_b ? B[gn * ldb + gk] : B[gk * ldb + gn]);
      Bs[k][n] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      Acc a[kPer], bv[kPer];
#pragma unroll
      for (int i = 0; i < kPer; ++i) a[i] = As[kk][ty + kTile * i];
#pragma unroll
      for (int j = 0; j < kPer; ++j) bv[j] = Bs[kk][tx + kTile * j];
#pragma unroll
      for (int i = 0; i < kPer; ++i)
#pragma unroll
        for (int j = 0; j < kPer; ++j) acc[i][j] += a[i] * bv[j];
    }
    __syncthreads();  // the slice is consumed before the next one overwrites it
  }

  for (int i = 0; i < kPer; ++i) {
    const int64_t gm = row0 + ty + kTile * i;
    if (gm >= M) continue;
    for (int j = 0; j < kPer; ++j) {
      const int64_t gn = col0 + tx + kTile * j;
      if (gn >= N) continue;
      T* c = C + gm * ldc + gn;
      *c = ep.finish(acc[i][j], c, gm, gn);
    }
  }
}

}  // namespace

template <class T>
Status gemm_simt(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                 const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                 int64_t stride_b, T* C, int64_t ldc, int64_t stride_c,
                 const DeviceEpilogue<T>& ep, cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0) return ok_status();
  Status s = check_tile_grid("gemm_simt_kernel", M, N, kBM, kBN);
  if (!s.ok()) return s;
  const unsigned gx = unsigned((N + kBN - 1) / kBN), gy = unsigned((M + kBM - 1) / kBM);
  for (int64_t b0 = 0; b0 < batch; b0 += kMaxGridZ) {
    const int64_t nb = batch - b0 < kMaxGridZ ? batch - b0 : kMaxGridZ;
    gemm_simt_kernel<T><<<dim3{gx, gy, unsigned(nb)}, kGemmThreads, 0, stream>>>(
        trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, b0, ep);
    s = launch_status("gemm_simt_kernel");
    if (!s.ok()) return s;
  }
  return ok_status();
}

#define SH_GEMM_SIMT_INSTANTIATE(T)                                                             \
  template Status gemm_simt<T>(int64_t, bool, bool, int64_t, int64_t, int64_t, const T*,        \
                               int64_t, int64_t, const T*, int64_t, int64_t, T*, int64_t,       \
                               int64_t, const DeviceEpilogue<T>&, cudaStream_t);
SH_GEMM_SIMT_INSTANTIATE(float)
SH_GEMM_SIMT_INSTANTIATE(double)
SH_GEMM_SIMT_INSTANTIATE(bf16)

}  // namespace shallow::cuda
