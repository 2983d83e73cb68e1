// The random fills and dropout of engine/cuda/random_ops.h in a build without CUDA: no tensor
// can be on a CUDA device there, so these are never reached, and say so if they are.
#include "engine/cuda/random_ops.h"

namespace shallow::gpu {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(str_cat(what, ": this build has no CUDA backend (configure with -DSHALLOW_CUDA=ON)"));
}
}  // namespace

void random_uniform(Tensor&, double, double, uint64_t, uint64_t, const char* name) {
  no_cuda(name);
}
void random_normal(Tensor&, uint64_t, uint64_t, const char* name) { no_cuda(name); }
void dropout(int64_t, int64_t, const Tensor&, Tensor&, double, uint64_t, uint64_t,
             const char* name) {
  no_cuda(name);
}

}  // namespace shallow::gpu
