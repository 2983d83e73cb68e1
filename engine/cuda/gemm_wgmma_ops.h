#pragma once
// The Hopper bf16 GEMM (kernels/cuda/gemm_bf16_wgmma.cu) as the engine sees it: the setting
// that lets CudaGemm::tiled use it, and the device facts that decide whether it can.
// Declared in every build; without CUDA (engine/cuda/without_cuda_gemm_wgmma.cpp) the
// setting is kept but selects nothing, and there is no device to ask about.
namespace shallow::gpu {

// Whether CudaGemm::tiled runs bf16 products on the wgmma kernel where the device and the
// operands allow it (true by default); false keeps them on the mma.sync kernel.
void set_bf16_wgmma_allowed(bool allowed);
bool bf16_wgmma_allowed();

// CTAs per cluster of the wgmma kernel: 1 (default) or 2, where two vertically adjacent tiles
// share B's slices by TMA multicast (other values mean 1). Starts from
// SHALLOW_CUDA_WGMMA_CLUSTER; the GEMM benchmark times both.
void set_bf16_wgmma_cluster(int ctas);
int bf16_wgmma_cluster();

// The compute capability of a CUDA device as major * 10 + minor (90 for an H100).
int cuda_compute_capability(int device = 0);

}  // namespace shallow::gpu
