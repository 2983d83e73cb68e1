// engine/cuda/gemm_wgmma_ops.h in a build without CUDA: the setting is kept (it selects
// nothing here); there is no device to ask about.
#include <atomic>

#include "engine/cuda/gemm_wgmma_ops.h"
#include "engine/error.h"

namespace shallow::gpu {
namespace {
std::atomic<bool> g_allowed{true};
std::atomic<int> g_cluster{1};
}  // namespace

void set_bf16_wgmma_allowed(bool allowed) { g_allowed.store(allowed); }
bool bf16_wgmma_allowed() { return g_allowed.load(); }
void set_bf16_wgmma_cluster(int ctas) { g_cluster.store(ctas == 2 ? 2 : 1); }
int bf16_wgmma_cluster() { return g_cluster.load(); }

int cuda_compute_capability(int device) {
  throw Error(str_cat("cuda_compute_capability(", device,
                      "): this build has no CUDA backend (configure with -DSHALLOW_CUDA=ON)"));
}

}  // namespace shallow::gpu
