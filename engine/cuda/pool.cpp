// Pooling on CUDA tensors.
#include "engine/cuda/conv_ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/pool.h"

namespace shallow::gpu {

void avg_pool2d_forward(const cpu::Pool2dShape& s, bool count_include_pad, const Tensor& x,
                        Tensor& y, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::avg_pool2d_forward<scalar_t>(s, count_include_pad, x.data<scalar_t>(),
                                             y.data<scalar_t>(), stream),
          name);
  });
}

void avg_pool2d_backward(const cpu::Pool2dShape& s, bool count_include_pad, const Tensor& gy,
                         Tensor& gx, const char* name) {
  cudaStream_t stream = stream_for(gy.device(), name);
  SH_DISPATCH_FLOAT(gy.dtype(), name, [&] {
    check(cuda::avg_pool2d_backward<scalar_t>(s, count_include_pad, gy.data<scalar_t>(),
                                              gx.data<scalar_t>(), stream),
          name);
  });
}

void max_pool2d_forward(const cpu::Pool2dShape& s, const Tensor& x, Tensor& y, Tensor& argmax,
                        const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::max_pool2d_forward<scalar_t>(s, x.data<scalar_t>(), y.data<scalar_t>(),
                                             argmax.data<int64_t>(), stream),
          name);
  });
}

void max_pool2d_backward(const cpu::Pool2dShape& s, const Tensor& gy, const Tensor& argmax,
                         Tensor& gx, const char* name) {
  cudaStream_t stream = stream_for(gy.device(), name);
  SH_DISPATCH_FLOAT(gy.dtype(), name, [&] {
    check(cuda::max_pool2d_backward<scalar_t>(s, gy.data<scalar_t>(), argmax.data<int64_t>(),
                                              gx.data<scalar_t>(), stream),
          name);
  });
}

void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                 int64_t W_out, const Tensor& x, Tensor& y, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::adaptive_avg_pool2d_forward<scalar_t>(planes, H, W, H_out, W_out,
                                                      x.data<scalar_t>(), y.data<scalar_t>(),
                                                      stream),
          name);
  });
}

void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                  int64_t W_out, const Tensor& gy, Tensor& gx, const char* name) {
  cudaStream_t stream = stream_for(gy.device(), name);
  SH_DISPATCH_FLOAT(gy.dtype(), name, [&] {
    check(cuda::adaptive_avg_pool2d_backward<scalar_t>(planes, H, W, H_out, W_out,
                                                       gy.data<scalar_t>(), gx.data<scalar_t>(),
                                                       stream),
          name);
  });
}

}  // namespace shallow::gpu
