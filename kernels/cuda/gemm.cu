#include "kernels/cuda/gemm.h"

#include <climits>

#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// ---- the tiled kernel
//
// A block computes a 64 x 64 tile of C with 256 threads, each owning 4 x 4 outputs. The
// outputs of thread (ty, tx) are rows ty + 16 i and columns tx + 16 j: neighbouring threads
// then read neighbouring shared-memory words (no bank conflicts) and write neighbouring
// columns of C (coalesced). K is walked in slices of 16, each slice of A and B staged in
// shared memory (in the accumulation type), zero-filled past the matrix edges.
constexpr int kBM = 64, kBN = 64, kBK = 16, kTile = 16, kPer = 4;
constexpr int kGemmThreads = kTile * kTile;

template <class T>
using acc_type = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <class T>
__global__ void __launch_bounds__(kGemmThreads)
gemm_tiled_kernel(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  acc_type<T> alpha, const T* __restrict__ A, int64_t lda, int64_t stride_a,
                  const T* __restrict__ B, int64_t ldb, int64_t stride_b, acc_type<T> beta,
                  T* __restrict__ C, int64_t ldc, int64_t stride_c, int64_t batch0) {
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
      Acc v = alpha * acc[i][j];
      if (beta != Acc(0)) v += beta * Acc(widen(*c));  // beta == 0 never reads C (may be garbage)
      *c = convert<T>(v);
    }
  }
}

// ---- cuBLAS

const char* cublas_message(cublasStatus_t s) { return cublasGetStatusString(s); }

template <class T> constexpr cudaDataType_t cuda_type();
template <> constexpr cudaDataType_t cuda_type<float>() { return CUDA_R_32F; }
template <> constexpr cudaDataType_t cuda_type<double>() { return CUDA_R_64F; }
template <> constexpr cudaDataType_t cuda_type<bf16>() { return CUDA_R_16BF; }

template <class T> constexpr cublasComputeType_t compute_type() {
  return std::is_same_v<T, double> ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

}  // namespace

template <class T>
Status gemm_tiled(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  gemm_scale_t<T> alpha, const T* A, int64_t lda, int64_t stride_a, const T* B,
                  int64_t ldb, int64_t stride_b, gemm_scale_t<T> beta, T* C, int64_t ldc,
                  int64_t stride_c, cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0) return ok_status();
  const int64_t grid_x = (N + kBN - 1) / kBN, grid_y = (M + kBM - 1) / kBM;
  if (grid_x > INT_MAX || grid_y > 65535)
    return Status{"gemm_tiled", "matrix too large for one launch (M " + std::to_string(M) +
                                    ", N " + std::to_string(N) + ")"};
  // gridDim.z is at most 65535: larger batches go in several launches.
  for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
    const int64_t nb = batch - b0 < 65535 ? batch - b0 : 65535;
    const dim3 grid{unsigned(grid_x), unsigned(grid_y), unsigned(nb)};
    gemm_tiled_kernel<T><<<grid, kGemmThreads, 0, stream>>>(trans_a, trans_b, M, N, K, alpha, A, lda,
                                                            stride_a, B, ldb, stride_b, beta, C,
                                                            ldc, stride_c, b0);
    Status s = launch_status("gemm_tiled_kernel");
    if (!s.ok()) return s;
  }
  return ok_status();
}

template <class T>
Status gemm_cublas(cublasHandle_t handle, int64_t batch, bool trans_a, bool trans_b, int64_t M,
                   int64_t N, int64_t K, gemm_scale_t<T> alpha, const T* A, int64_t lda,
                   int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b,
                   gemm_scale_t<T> beta, T* C, int64_t ldc, int64_t stride_c, cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0) return ok_status();
  if (!fits_int(batch) || !fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(lda) ||
      !fits_int(ldb) || !fits_int(ldc))
    return Status{"cublasGemmStridedBatchedEx", "a size or leading dimension exceeds INT_MAX"};
  cublasStatus_t st = cublasSetStream(handle, stream);
  if (st != CUBLAS_STATUS_SUCCESS) return Status{"cublasSetStream", cublas_message(st)};
  // cuBLAS is column-major. A row-major matrix with row stride ld is, read column-major, its
  // transpose with leading dimension ld. So C^T = op(B)^T op(A)^T is computed: B comes first,
  // and the result lands in C's row-major layout.
  st = cublasGemmStridedBatchedEx(
      handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(N),
      int(M), int(K), &alpha, B, cuda_type<T>(), int(ldb), stride_b, A, cuda_type<T>(), int(lda),
      stride_a, &beta, C, cuda_type<T>(), int(ldc), stride_c, int(batch), compute_type<T>(),
      CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS) return Status{"cublasGemmStridedBatchedEx", cublas_message(st)};
  return ok_status();
}

#define SH_GEMM_INSTANTIATE(T)                                                                   \
  template Status gemm_tiled<T>(int64_t, bool, bool, int64_t, int64_t, int64_t, gemm_scale_t<T>, \
                                const T*, int64_t, int64_t, const T*, int64_t, int64_t,          \
                                gemm_scale_t<T>, T*, int64_t, int64_t, cudaStream_t);            \
  template Status gemm_cublas<T>(cublasHandle_t, int64_t, bool, bool, int64_t, int64_t, int64_t, \
                                 gemm_scale_t<T>, const T*, int64_t, int64_t, const T*, int64_t, \
                                 int64_t, gemm_scale_t<T>, T*, int64_t, int64_t, cudaStream_t);
SH_GEMM_INSTANTIATE(float)
SH_GEMM_INSTANTIATE(double)
SH_GEMM_INSTANTIATE(bf16)

}  // namespace shallow::cuda
