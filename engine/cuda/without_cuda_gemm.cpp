// engine/cuda/gemm_ops.h in a build without CUDA: never reached (no tensor can be on a CUDA
// device), and says so if it is.
#include "engine/cuda/gemm_ops.h"

namespace shallow::gpu {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(str_cat(what, ": this build has no CUDA backend (configure with -DSHALLOW_CUDA=ON)"));
}
}  // namespace

void gemm_ex(int64_t, bool, bool, int64_t, int64_t, int64_t, double, const Tensor&, int64_t,
             int64_t, const Tensor&, int64_t, int64_t, double, Tensor&, int64_t, int64_t,
             const GemmEpilogueArgs&, const char* name) {
  no_cuda(name);
}

const char* tiled_gemm_kernel(int64_t, const Tensor&, int64_t, int64_t, const Tensor&, int64_t,
                              int64_t) {
  no_cuda("tiled_gemm_kernel");
}

}  // namespace shallow::gpu
