// The optimizer entry points of engine/cuda/optim_ops.h in a build without CUDA: never reached
// (no tensor can be on a CUDA device), and they say so if they are.
#include "engine/cuda/optim_ops.h"

namespace shallow::gpu {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(str_cat(what, ": this build has no CUDA backend (configure with -DSHALLOW_CUDA=ON)"));
}
}  // namespace

void sgd_update(Tensor&, const Tensor&, Tensor&, bool, const cpu::SgdHyper&, const char* name) {
  no_cuda(name);
}
std::vector<double> abs_pow_sums(const std::vector<Tensor>&, double, const char* name) {
  no_cuda(name);
}
void scale_inplace(Tensor&, double, const char* name) { no_cuda(name); }

}  // namespace shallow::gpu
