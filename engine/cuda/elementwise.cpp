// Unary and binary elementwise ops on CUDA tensors.
#include "engine/cuda/ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/binary.h"
#include "kernels/cuda/unary.h"

namespace shallow::gpu {

void unary(cpu::UnaryOp op, const Tensor& x, Tensor& y, cpu::UnaryParams p, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT_AND_HALF(x.dtype(), name, [&] {
    check(cuda::unary<scalar_t>(op, x.numel(), x.data<scalar_t>(), y.data<scalar_t>(), p, stream),
          name);
  });
}

void unary_backward(cpu::UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy,
                    Tensor& gx, cpu::UnaryParams p, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::unary_backward<scalar_t>(op, x.numel(), x.data<scalar_t>(), y.data<scalar_t>(),
                                         gy.data<scalar_t>(), gx.data<scalar_t>(), p, stream),
          name);
  });
}

void binary(cpu::BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, const char* name) {
  cudaStream_t stream = stream_for(out.device(), name);
  SH_DISPATCH_FLOAT_AND_HALF(out.dtype(), name, [&] {
    check(cuda::binary<scalar_t>(op, int(out.dim()), out.shape().data(),
                                 static_cast<const scalar_t*>(a.raw_data()), a.strides().data(),
                                 static_cast<const scalar_t*>(b.raw_data()), b.strides().data(),
                                 out.data<scalar_t>(), stream),
          name);
  });
}

}  // namespace shallow::gpu
