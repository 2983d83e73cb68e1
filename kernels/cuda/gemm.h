#pragma once
// Batched general matrix multiply on row-major device matrices, the CUDA twin of
// kernels/cpu/gemm.h:
//   C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b],  op(X) = X or X^T,
// matrix b of each operand starting stride_* elements after matrix b-1 (0 repeats one matrix).
// lda/ldb/ldc are row strides in elements. Two implementations with one contract:
//   gemm_tiled:  our shared-memory tiled kernel (float, double, bf16 in and out; bf16 is
//                accumulated in f32);
//   gemm_cublas: cublasGemmStridedBatchedEx (bf16 with f32 accumulation, f32 without TF32).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cpu/half.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

// alpha and beta are double for double matrices and float otherwise.
template <class T>
using gemm_scale_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Which of the two a caller wants; the engine holds the setting.
enum class GemmBackend { cublas, tiled };

template <class T>
Status gemm_tiled(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  gemm_scale_t<T> alpha, const T* A, int64_t lda, int64_t stride_a, const T* B,
                  int64_t ldb, int64_t stride_b, gemm_scale_t<T> beta, T* C, int64_t ldc,
                  int64_t stride_c, cudaStream_t stream);

// The handle's stream is set to `stream` for the call. Sizes must fit cuBLAS's int.
template <class T>
Status gemm_cublas(cublasHandle_t handle, int64_t batch, bool trans_a, bool trans_b, int64_t M,
                   int64_t N, int64_t K, gemm_scale_t<T> alpha, const T* A, int64_t lda,
                   int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b,
                   gemm_scale_t<T> beta, T* C, int64_t ldc, int64_t stride_c, cudaStream_t stream);

}  // namespace shallow::cuda
