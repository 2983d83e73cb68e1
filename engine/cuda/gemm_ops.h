#pragma once
// The general GEMM on CUDA tensors, with cpu::gemm_ex's epilogue (kernels/cpu/gemm.h):
//   c[b] = act(alpha * op(a[b]) op(b[b]) + beta * c[b] + bias)
// for row-major matrices read in place from a, b and c (their raw_data(), with the given row
// and batch strides; a batch stride of 0 repeats one matrix). a, b, c (and bias, when defined:
// contiguous, length N, or M with bias_per_row) are on one CUDA device, of one dtype: f32,
// f64 or bf16 (accumulated in f32). The implementation follows cuda_gemm(): cuBLAS (then the
// epilogue in a pass of its own) or the engine's own kernels (the epilogue in their stores).
//
// Declared in every build; without CUDA (engine/cuda/without_cuda_gemm.cpp) the functions
// throw, but they are never reached there, because no tensor can be on a CUDA device.
#include "engine/tensor.h"
#include "kernels/cpu/gemm.h"

namespace shallow::gpu {

struct GemmEpilogueArgs {
  Tensor bias;  // undefined: none
  bool bias_per_row = false;
  cpu::GemmActivation act = cpu::GemmActivation::none;
};

void gemm_ex(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
             double alpha, const Tensor& a, int64_t lda, int64_t stride_a, const Tensor& b,
             int64_t ldb, int64_t stride_b, double beta, Tensor& c, int64_t ldc, int64_t stride_c,
             const GemmEpilogueArgs& epilogue, const char* name);

// The name of the kernel CudaGemm::tiled runs for these operands of a's dtype:
// "bf16_wgmma" (bf16 whose rows are 16-byte aligned, on Hopper with the sm_90a image),
// "bf16_tensor_core" (the same elsewhere), "f32_simt_128" or "simt_64".
const char* tiled_gemm_kernel(int64_t batch, const Tensor& a, int64_t lda, int64_t stride_a,
                              const Tensor& b, int64_t ldb, int64_t stride_b);

}  // namespace shallow::gpu
