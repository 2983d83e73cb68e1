#pragma once
// Batched general matrix multiply on row-major device matrices, the CUDA twin of
// kernels/cpu/gemm.h:
//   C[b] = act(alpha * op(A[b]) * op(B[b]) + beta * C[b] + bias),  op(X) = X or X^T,
// matrix b of each operand starting stride_* elements after matrix b-1 (0 repeats one matrix).
// lda/ldb/ldc are row strides in elements. The epilogue (bias per column or per row, and the
// activation) is cpu::gemm_ex's; beta == 0 never reads C. Two implementations, one contract:
//   gemm_tiled:  the engine's own kernels (kernels/cuda/gemm_kernels.cuh): bf16 on tensor
//                cores where the operands' rows are 16-byte aligned (wgmma on sm_90a), f32 on 128 x 128 tiles,
//                f64 (and other bf16 layouts) on the general 64 x 64 kernel; the epilogue is
//                applied in the kernels' stores;
//   gemm_cublas: cublasGemmStridedBatchedEx (bf16 with f32 accumulation, f32 without TF32),
//                then the epilogue, when there is one, as a pass of its own over C.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cpu/gemm.h"
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
                  int64_t stride_c, cudaStream_t stream,
                  const cpu::GemmEpilogue<T>& epilogue = {});

// Which kernel gemm_tiled runs for these operands (the others' choice depends on the type only).
enum class TiledGemmKernel { bf16_wgmma, bf16_tensor_core, f32_simt_128, simt_64 };
template <class T>
TiledGemmKernel gemm_tiled_kernel(int64_t batch, const T* A, int64_t lda, int64_t stride_a,
                                  const T* B, int64_t ldb, int64_t stride_b);
const char* gemm_tiled_kernel_name(TiledGemmKernel k);  // "bf16_wgmma", "bf16_tensor_core", ...

// Whether gemm_tiled may pick the Hopper kernel (bf16_wgmma) where it applies; true by
// default. Off, bf16 goes to the mma.sync kernel (bf16_tensor_core) instead, for comparisons.
void set_bf16_wgmma_allowed(bool allowed);
bool bf16_wgmma_allowed();
// CTAs per cluster of the Hopper kernel: 1 (the default) or 2 (vertically adjacent tiles
// share B's slices by TMA multicast). SHALLOW_CUDA_WGMMA_CLUSTER sets the initial value.
void set_bf16_wgmma_cluster(int ctas);
int bf16_wgmma_cluster();

// The handle's stream is set to `stream` for the call. Sizes must fit cuBLAS's int.
template <class T>
Status gemm_cublas(cublasHandle_t handle, int64_t batch, bool trans_a, bool trans_b, int64_t M,
                   int64_t N, int64_t K, gemm_scale_t<T> alpha, const T* A, int64_t lda,
                   int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b,
                   gemm_scale_t<T> beta, T* C, int64_t ldc, int64_t stride_c, cudaStream_t stream,
                   const cpu::GemmEpilogue<T>& epilogue = {});

}  // namespace shallow::cuda
