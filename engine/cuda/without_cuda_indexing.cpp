// The indexing entry points of engine/cuda/indexing_ops.h in a build without CUDA: never
// reached (no tensor can be on a CUDA device), and they say so if they are.
#include "engine/cuda/indexing_ops.h"

namespace shallow::gpu {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(str_cat(what, ": this build has no CUDA backend (configure with -DSHALLOW_CUDA=ON)"));
}
}  // namespace

void index_select(int64_t, int64_t, int64_t, const Tensor&, const Tensor&, Tensor&,
                  const char* name) {
  no_cuda(name);
}
void index_add(int64_t, int64_t, int64_t, Tensor&, const Tensor&, const Tensor&, const char* name) {
  no_cuda(name);
}
void gather(int64_t, int64_t, int64_t, const Tensor&, int64_t, const Tensor&, Tensor&,
            const char* name) {
  no_cuda(name);
}
void scatter_add(int64_t, int64_t, int64_t, Tensor&, int64_t, const Tensor&, const Tensor&,
                 const char* name) {
  no_cuda(name);
}
void where(const Tensor&, const Tensor&, const Tensor&, Tensor&, const char* name) {
  no_cuda(name);
}

}  // namespace shallow::gpu
