// The fused attention's entry points in a build without CUDA: never reached (no tensor can be
// on a CUDA device), and they say so if they are.
#include "engine/cuda/attention_ops.h"

namespace shallow::gpu {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(str_cat(what, ": this build has no CUDA backend (configure with -DSHALLOW_CUDA=ON)"));
}
}  // namespace

void fused_attention_forward(const FusedAttention&, Tensor&, Tensor&, const char* name) {
  no_cuda(name);
}
void fused_attention_backward(const FusedAttention&, const Tensor&, const Tensor&, const Tensor&,
                              Tensor&, Tensor&, Tensor&, const char* name) {
  no_cuda(name);
}

}  // namespace shallow::gpu
