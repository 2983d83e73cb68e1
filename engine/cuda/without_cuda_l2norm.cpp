// The L2 normalization entry points of engine/cuda/l2norm_ops.h in a build without CUDA: never
// reached (no tensor can be on a CUDA device), and they say so if they are.
#include "engine/cuda/l2norm_ops.h"

namespace shallow::gpu {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(str_cat(what, ": this build has no CUDA backend (configure with -DSHALLOW_CUDA=ON)"));
}
}  // namespace

void l2_normalize(int64_t, int64_t, int64_t, const Tensor&, double, Tensor&, Tensor&,
                  const char* name) {
  no_cuda(name);
}
void l2_normalize_backward(int64_t, int64_t, int64_t, const Tensor&, const Tensor&, double,
                           const Tensor&, Tensor&, const char* name) {
  no_cuda(name);
}

}  // namespace shallow::gpu
