// The cuBLASLt path's settings, forwarded to the kernel layer.
#include "engine/cuda/gemm_cublaslt_ops.h"
#include "kernels/cuda/gemm_cublaslt.h"

namespace shallow::gpu {

void set_cublaslt_allowed(bool allowed) { cuda::set_cublaslt_allowed(allowed); }
bool cublaslt_allowed() { return cuda::cublaslt_allowed(); }
void set_cublaslt_relu_epilogue(bool allowed) { cuda::set_cublaslt_relu_epilogue(allowed); }
bool cublaslt_relu_epilogue() { return cuda::cublaslt_relu_epilogue(); }
uint64_t cublaslt_gemm_count() { return cuda::cublaslt_gemm_count(); }

}  // namespace shallow::gpu
