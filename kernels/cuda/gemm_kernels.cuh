#pragma once
// The engine's own GEMM kernels behind cuda::gemm_tiled (kernels/cuda/gemm.h), one file each:
//   gemm_bf16_wgmma.cu bf16 on Hopper (sm_90a): wgmma fed by TMA, where the device runs it
//   gemm_bf16_tc.cu    bf16 on tensor cores (mma.sync m16n8k16, f32 accumulators)
//   gemm_f32_simt.cu   f32 on the CUDA cores, 128 x 128 block tiles
//   gemm_simt.cu       any type, 64 x 64 block tiles: f64, and bf16 layouts the
//                      tensor-core kernel cannot read
//   gemm_epilogue.cu   bias and activation as a pass of their own (after cuBLAS)
// Every launcher takes the contract of gemm_tiled (row-major matrices, trans flags, row and
// batch strides, batch strides of 0 allowed) with the epilogue folded into DeviceEpilogue.
// Internal to kernels/cuda/gemm*.cu.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/cuda/gemm_epilogue.cuh"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

// Whether the tensor-core kernel can read A and B: each 16-byte chunk of a stored row must be
// 16-byte aligned for cp.async, so the pointers are 16-byte aligned and the row strides (and
// the batch strides when there is more than one matrix) are multiples of 8 elements.
bool bf16_tensor_core_applies(int64_t batch, const bf16* A, int64_t lda, int64_t stride_a,
                              const bf16* B, int64_t ldb, int64_t stride_b);

// Whether the Hopper kernel can run these operands: the tensor-core kernel's alignment (TMA
// needs the same), on a compute capability 9.0 device that loaded the sm_90a image.
bool bf16_wgmma_applies(int64_t batch, const bf16* A, int64_t lda, int64_t stride_a,
                        const bf16* B, int64_t ldb, int64_t stride_b);

// Every transpose; sizes and extents up to 2^31 - 1.
Status gemm_bf16_wgmma(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N,
                       int64_t K, const bf16* A, int64_t lda, int64_t stride_a, const bf16* B,
                       int64_t ldb, int64_t stride_b, bf16* C, int64_t ldc, int64_t stride_c,
                       const DeviceEpilogue<bf16>& ep, cudaStream_t stream);

Status gemm_bf16_tensor_core(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N,
                             int64_t K, const bf16* A, int64_t lda, int64_t stride_a,
                             const bf16* B, int64_t ldb, int64_t stride_b, bf16* C, int64_t ldc,
                             int64_t stride_c, const DeviceEpilogue<bf16>& ep,
                             cudaStream_t stream);

Status gemm_f32_simt(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                     const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                     int64_t stride_b, float* C, int64_t ldc, int64_t stride_c,
                     const DeviceEpilogue<float>& ep, cudaStream_t stream);

template <class T>
Status gemm_simt(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                 const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                 int64_t stride_b, T* C, int64_t ldc, int64_t stride_c,
                 const DeviceEpilogue<T>& ep, cudaStream_t stream);

// C = act(C + bias) over `batch` matrices of M x N, in place.
template <class T>
Status gemm_bias_act(int64_t batch, int64_t M, int64_t N, T* C, int64_t ldc, int64_t stride_c,
                     const T* bias, bool bias_per_row, GemmActivation act, cudaStream_t stream);

// The launch grid of a kernel with block tiles of bm x bn: x over column tiles, y over row
// tiles (at most 65535), z over batches (launched in groups of 65535). Returns a failed Status
// naming `kernel` when the matrix has too many row tiles.
inline Status check_tile_grid(const char* kernel, int64_t M, int64_t N, int bm, int bn) {
  const int64_t gx = (N + bn - 1) / bn, gy = (M + bm - 1) / bm;
  if (gx > 2147483647 || gy > 65535)
    return Status{kernel, "matrix too large for one launch (M " + std::to_string(M) + ", N " +
                              std::to_string(N) + ")"};
  return ok_status();
}
constexpr int64_t kMaxGridZ = 65535;

}  // namespace shallow::cuda
