#pragma once
// The cuBLASLt epilogue path of CudaGemm::cublas (kernels/cuda/gemm_cublaslt.h) as the engine
// sees it: its settings and a count of the products it ran. Declared in every build; without
// CUDA (engine/cuda/without_cuda_gemm_cublaslt.cpp) the settings are kept but select nothing
// and the count stays 0.
#include <cstdint>

namespace shallow::gpu {

// Whether GEMMs with a bias or an activation fold them into cublasLtMatmul where it can
// (true unless SHALLOW_CUDA_CUBLASLT=0 was set at start-up); false runs cuBLAS, then the
// epilogue as a pass of its own.
void set_cublaslt_allowed(bool allowed);
bool cublaslt_allowed();

// Whether relu may use cuBLASLt's RELU epilogue (false by default: cuBLASLt documents it as
// max(x, 0), which need not keep NaN as the engine's relu does).
void set_cublaslt_relu_epilogue(bool allowed);
bool cublaslt_relu_epilogue();

// How many products ran through cublasLtMatmul in this process.
uint64_t cublaslt_gemm_count();

}  // namespace shallow::gpu
