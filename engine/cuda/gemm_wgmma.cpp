// The Hopper GEMM's setting and the device facts behind its selection.
#include <cuda_runtime_api.h>

#include "engine/cuda/gemm_wgmma_ops.h"
#include "engine/error.h"
#include "kernels/cuda/gemm.h"

namespace shallow::gpu {

void set_bf16_wgmma_allowed(bool allowed) { cuda::set_bf16_wgmma_allowed(allowed); }
bool bf16_wgmma_allowed() { return cuda::bf16_wgmma_allowed(); }
void set_bf16_wgmma_cluster(int ctas) { cuda::set_bf16_wgmma_cluster(ctas); }
int bf16_wgmma_cluster() { return cuda::bf16_wgmma_cluster(); }

int cuda_compute_capability(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
    throw Error(str_cat("cuda_compute_capability: no CUDA device ", device));
  return major * 10 + minor;
}

}  // namespace shallow::gpu
