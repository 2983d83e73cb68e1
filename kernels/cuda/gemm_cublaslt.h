#pragma once
// The cuBLAS GEMM with its epilogue folded into cublasLtMatmul, for gemm_cublas
// (kernels/cuda/gemm.h) when the GEMM has a bias or an activation. Same contract:
//   C[b] = act(alpha * op(A[b]) * op(B[b]) + beta * C[b] + bias)
// on row-major matrices with row strides lda/ldb/ldc and batch strides (0 repeats a matrix).
//
// Like gemm_cublas, the column-major product C^T = op(B)^T op(A)^T is computed. cuBLASLt's bias
// is one value per row of its column-major D, that is per column of our row-major C: exactly a
// per-column bias. What is folded, for f32 (CUBLAS_COMPUTE_32F, no TF32) and bf16 (f32
// accumulation and scale, bf16 bias):
//   bias per column                -> CUBLASLT_EPILOGUE_BIAS
//   gelu_tanh (bias or not), bf16  -> CUBLASLT_EPILOGUE_GELU(_BIAS), cuBLASLt's GELU being
//                                     the tanh approximation (f32: as gelu below)
//   relu (bias or not)             -> CUBLASLT_EPILOGUE_RELU(_BIAS) only where allowed with
//                                     set_cublaslt_relu_epilogue (off by default: our relu
//                                     keeps NaN, max(x, 0) may not); otherwise as below
//   gelu, quick_gelu, relu         -> the bias in cuBLASLt, then the activation alone in the
//                                     separate pass (gemm_bias_act without bias)
// beta != 0 folds too: cuBLASLt computes act(alpha AB + beta C + bias), our order.
// Declined (the caller runs cublasGemmStridedBatchedEx and the pass instead): f64, a bias per
// row (per column of D: not what the BIAS epilogue does), an activation with neither a bias nor
// a cuBLASLt form, K == 0, the switch off, and whatever cuBLASLt itself refuses (no algorithm
// from its heuristic, an unsupported layout or batch stride, a failed call, no workspace).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

// What a call to gemm_cublaslt did.
struct CublasLtAttempt {
  bool ran = false;  // false: declined, nothing was queued and C is untouched
  Status status;     // when it ran: the outcome (a failure of the activation pass)
};

// Runs the product through cublasLtMatmul on `stream` where the case allows it (see above).
// The cuBLASLt handle (one per device) and a 32 MiB workspace (one per device and stream) are
// created at the first use and kept; the heuristic's algorithm is remembered per shape.
template <class T>
CublasLtAttempt gemm_cublaslt(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N,
                              int64_t K, gemm_scale_t<T> alpha, const T* A, int64_t lda,
                              int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b,
                              gemm_scale_t<T> beta, T* C, int64_t ldc, int64_t stride_c,
                              cudaStream_t stream, const cpu::GemmEpilogue<T>& epilogue);

// Whether gemm_cublas may use this path (true unless SHALLOW_CUDA_CUBLASLT=0 was in the
// environment at start-up); off, every epilogue runs as the separate pass, for comparisons.
void set_cublaslt_allowed(bool allowed);
bool cublaslt_allowed();

// Whether relu may use cuBLASLt's RELU epilogue (false by default, see above).
void set_cublaslt_relu_epilogue(bool allowed);
bool cublaslt_relu_epilogue();

// How many products have run through cublasLtMatmul in this process (all devices).
uint64_t cublaslt_gemm_count();

}  // namespace shallow::cuda
