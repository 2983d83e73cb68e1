// Convolution, pooling and batch norm in a build without CUDA: the setting exists (and stays
// on the implicit-GEMM kernels), the device branches are never reached and say so if they are.
#include "engine/cuda/conv_ops.h"

namespace shallow {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(str_cat(what, ": this build has no CUDA backend (configure with -DSHALLOW_CUDA=ON)"));
}
}  // namespace

void set_cuda_conv(CudaConv) {}
CudaConv cuda_conv() { return CudaConv::implicit_gemm; }
const char* cuda_conv_name(CudaConv c) { return c == CudaConv::cudnn ? "cudnn" : "implicit_gemm"; }
bool cuda_conv_has_cudnn() { return false; }

namespace gpu {
void conv2d_forward(const cpu::Conv2dShape&, const Tensor&, const Tensor&, const Tensor&, Tensor&,
                    const char* name) { no_cuda(name); }
void conv2d_backward_input(const cpu::Conv2dShape&, const Tensor&, const Tensor&, Tensor&,
                           const char* name) { no_cuda(name); }
void conv2d_backward_weight(const cpu::Conv2dShape&, const Tensor&, const Tensor&, Tensor&,
                            const char* name) { no_cuda(name); }
void conv2d_backward_bias(const cpu::Conv2dShape&, const Tensor&, Tensor&, const char* name) {
  no_cuda(name);
}
void avg_pool2d_forward(const cpu::Pool2dShape&, bool, const Tensor&, Tensor&, const char* name) {
  no_cuda(name);
}
void avg_pool2d_backward(const cpu::Pool2dShape&, bool, const Tensor&, Tensor&, const char* name) {
  no_cuda(name);
}
void max_pool2d_forward(const cpu::Pool2dShape&, const Tensor&, Tensor&, Tensor&,
                        const char* name) { no_cuda(name); }
void max_pool2d_backward(const cpu::Pool2dShape&, const Tensor&, const Tensor&, Tensor&,
                         const char* name) { no_cuda(name); }
void adaptive_avg_pool2d_forward(int64_t, int64_t, int64_t, int64_t, int64_t, const Tensor&,
                                 Tensor&, const char* name) { no_cuda(name); }
void adaptive_avg_pool2d_backward(int64_t, int64_t, int64_t, int64_t, int64_t, const Tensor&,
                                  Tensor&, const char* name) { no_cuda(name); }
void batch_norm_stats(int64_t, int64_t, int64_t, const Tensor&, Tensor&, Tensor&,
                      const char* name) { no_cuda(name); }
void batch_norm_apply(int64_t, int64_t, int64_t, const Tensor&, const Tensor&, const Tensor&,
                      const Tensor&, const Tensor&, Tensor&, const char* name) { no_cuda(name); }
void batch_norm_backward(int64_t, int64_t, int64_t, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, const Tensor&, bool, Tensor&, Tensor&, Tensor&,
                         const char* name) { no_cuda(name); }
}  // namespace gpu
}  // namespace shallow
