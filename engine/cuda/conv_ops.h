#pragma once
// Convolution, pooling and batch norm on CUDA: which convolution implementation runs, and the
// device branch of the ops in engine/ops/conv.cpp, pool.cpp and norm.cpp (batch_norm).
// As in ops.h, the gpu:: functions take tensors the op has checked and prepared (one CUDA
// device, f32 or f64, contiguous) and throw shallow::Error naming the op and the failing call.
// Declared in every build; engine/cuda/without_cuda_conv.cpp stands in without CUDA.
#include "engine/tensor.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/pool.h"

namespace shallow {

// Which convolution conv2d/conv1d use on CUDA: the engine's implicit-GEMM kernels or cuDNN.
// The default is cuDNN where the build has it; SHALLOW_CUDA_CONV=implicit_gemm|cudnn in the
// environment sets the initial value. Asking for cuDNN in a build without it keeps the
// implicit-GEMM kernels (cuda_conv() then says so).
enum class CudaConv { implicit_gemm, cudnn };
void set_cuda_conv(CudaConv c);
CudaConv cuda_conv();
const char* cuda_conv_name(CudaConv c);  // "implicit_gemm", "cudnn"
bool cuda_conv_has_cudnn();              // this build links cuDNN

namespace gpu {

// ---- convolution (NCHW), with the setting above. b, like the CPU kernels' bias, may be
// undefined.
void conv2d_forward(const cpu::Conv2dShape& s, const Tensor& x, const Tensor& w, const Tensor& b,
                    Tensor& y, const char* name);
void conv2d_backward_input(const cpu::Conv2dShape& s, const Tensor& gy, const Tensor& w,
                           Tensor& gx, const char* name);
void conv2d_backward_weight(const cpu::Conv2dShape& s, const Tensor& gy, const Tensor& x,
                            Tensor& gw, const char* name);
void conv2d_backward_bias(const cpu::Conv2dShape& s, const Tensor& gy, Tensor& gb,
                          const char* name);

// ---- pooling on [planes, H, W] (the contracts of kernels/cpu/pool.h)
void avg_pool2d_forward(const cpu::Pool2dShape& s, bool count_include_pad, const Tensor& x,
                        Tensor& y, const char* name);
void avg_pool2d_backward(const cpu::Pool2dShape& s, bool count_include_pad, const Tensor& gy,
                         Tensor& gx, const char* name);
// argmax is i64 with y's shape.
void max_pool2d_forward(const cpu::Pool2dShape& s, const Tensor& x, Tensor& y, Tensor& argmax,
                        const char* name);
void max_pool2d_backward(const cpu::Pool2dShape& s, const Tensor& gy, const Tensor& argmax,
                         Tensor& gx, const char* name);
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                 int64_t W_out, const Tensor& x, Tensor& y, const char* name);
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                  int64_t W_out, const Tensor& gy, Tensor& gx, const char* name);

// ---- batch norm over the channels of a contiguous [N, C, S] block (kernels/cpu/norm.h)
void batch_norm_stats(int64_t N, int64_t C, int64_t S, const Tensor& x, Tensor& mean,
                      Tensor& var, const char* name);
// weight and bias may be undefined.
void batch_norm_apply(int64_t N, int64_t C, int64_t S, const Tensor& x, const Tensor& mean,
                      const Tensor& invstd, const Tensor& weight, const Tensor& bias, Tensor& y,
                      const char* name);
// weight, gx, gweight, gbias may be undefined.
void batch_norm_backward(int64_t N, int64_t C, int64_t S, const Tensor& x, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight, const Tensor& gy,
                         bool batch_stats, Tensor& gx, Tensor& gweight, Tensor& gbias,
                         const char* name);

}  // namespace gpu
}  // namespace shallow
