#include "kernels/cuda/gemm.h"

#include <climits>

#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

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
TiledGemmKernel gemm_tiled_kernel(int64_t batch, const T* A, int64_t lda, int64_t stride_a,
                                  const T* B, int64_t ldb, int64_t stride_b) {
  if constexpr (std::is_same_v<T, bf16>) {
    if (bf16_wgmma_applies(batch, A, lda, stride_a, B, ldb, stride_b))
      return TiledGemmKernel::bf16_wgmma;
    if (bf16_tensor_core_applies(batch, A, lda, stride_a, B, ldb, stride_b))
      return TiledGemmKernel::bf16_tensor_core;
  }
  if constexpr (std::is_same_v<T, float>) return TiledGemmKernel::f32_simt_128;
  return TiledGemmKernel::simt_64;
}

const char* gemm_tiled_kernel_name(TiledGemmKernel k) {
  switch (k) {
    case TiledGemmKernel::bf16_wgmma: return "bf16_wgmma";
    case TiledGemmKernel::bf16_tensor_core: return "bf16_tensor_core";
    case TiledGemmKernel::f32_simt_128: return "f32_simt_128";
    case TiledGemmKernel::simt_64: return "simt_64";
  }
  return "?";
}

template <class T>
Status gemm_tiled(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  gemm_scale_t<T> alpha, const T* A, int64_t lda, int64_t stride_a, const T* B,
                  int64_t ldb, int64_t stride_b, gemm_scale_t<T> beta, T* C, int64_t ldc,
                  int64_t stride_c, cudaStream_t stream, const cpu::GemmEpilogue<T>& epilogue) {
  if (batch == 0 || M == 0 || N == 0) return ok_status();
  const DeviceEpilogue<T> ep = device_epilogue<T>(alpha, beta, epilogue);
  switch (gemm_tiled_kernel<T>(batch, A, lda, stride_a, B, ldb, stride_b)) {
    case TiledGemmKernel::bf16_wgmma:
      if constexpr (std::is_same_v<T, bf16>)
        return gemm_bf16_wgmma(batch, trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb,
                               stride_b, C, ldc, stride_c, ep, stream);
      break;
    case TiledGemmKernel::bf16_tensor_core:
      if constexpr (std::is_same_v<T, bf16>)
        return gemm_bf16_tensor_core(batch, trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb,
                                     stride_b, C, ldc, stride_c, ep, stream);
      break;
    case TiledGemmKernel::f32_simt_128:
      if constexpr (std::is_same_v<T, float>)
        return gemm_f32_simt(batch, trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb,
                             stride_b, C, ldc, stride_c, ep, stream);
      break;
    case TiledGemmKernel::simt_64:
      break;
  }
  return gemm_simt<T>(batch, trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb, stride_b, C,
                      ldc, stride_c, ep, stream);
}

template <class T>
Status gemm_cublas(cublasHandle_t handle, int64_t batch, bool trans_a, bool trans_b, int64_t M,
                   int64_t N, int64_t K, gemm_scale_t<T> alpha, const T* A, int64_t lda,
                   int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b,
                   gemm_scale_t<T> beta, T* C, int64_t ldc, int64_t stride_c, cudaStream_t stream,
                   const cpu::GemmEpilogue<T>& epilogue) {
  if (batch == 0 || M == 0 || N == 0) return ok_status();
  if (!fits_int(batch) || !fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(lda) ||
      !fits_int(ldb) || !fits_int(ldc))
    return Status{"cublasGemmStridedBatchedEx", "a size or leading dimension exceeds INT_MAX"};
  if (epilogue.active()) {
    // cuBLASLt folds the bias (and some activations) into the product where it can; where it
    // declines, nothing was queued and the product and the pass below run instead.
    const CublasLtAttempt lt =
        gemm_cublaslt<T>(batch, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb,
                         stride_b, beta, C, ldc, stride_c, stream, epilogue);
    if (lt.ran) return lt.status;
  }
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
  if (!epilogue.active()) return ok_status();
  // cuBLAS has written C (rounded to T); bias and activation follow in one more pass.
  return gemm_bias_act<T>(batch, M, N, C, ldc, stride_c, epilogue.bias, epilogue.bias_per_row,
                          epilogue.act, stream);
}

#define SH_GEMM_INSTANTIATE(T)                                                                   \
  template Status gemm_tiled<T>(int64_t, bool, bool, int64_t, int64_t, int64_t, gemm_scale_t<T>, \
                                const T*, int64_t, int64_t, const T*, int64_t, int64_t,          \
                                gemm_scale_t<T>, T*, int64_t, int64_t, cudaStream_t,            \
                                const cpu::GemmEpilogue<T>&);                                    \
  template TiledGemmKernel gemm_tiled_kernel<T>(int64_t, const T*, int64_t, int64_t, const T*,   \
                                                int64_t, int64_t);                               \
  template Status gemm_cublas<T>(cublasHandle_t, int64_t, bool, bool, int64_t, int64_t, int64_t, \
                                 gemm_scale_t<T>, const T*, int64_t, int64_t, const T*, int64_t, \
                                 int64_t, gemm_scale_t<T>, T*, int64_t, int64_t, cudaStream_t,   \
                                 const cpu::GemmEpilogue<T>&);
SH_GEMM_INSTANTIATE(float)
SH_GEMM_INSTANTIATE(double)
SH_GEMM_INSTANTIATE(bf16)

}  // namespace shallow::cuda
