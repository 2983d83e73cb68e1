// L2 normalization on CUDA tensors.
#include "engine/cuda/l2norm_ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/l2norm.h"

namespace shallow::gpu {

void l2_normalize(int64_t outer, int64_t n, int64_t inner, const Tensor& x, double eps, Tensor& y,
                  Tensor& norm, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::l2_normalize<scalar_t>(outer, n, inner, x.data<scalar_t>(), eps, y.data<scalar_t>(),
                                       norm.data<scalar_t>(), stream),
          name);
  });
}

void l2_normalize_backward(int64_t outer, int64_t n, int64_t inner, const Tensor& y,
                           const Tensor& norm, double eps, const Tensor& gy, Tensor& gx,
                           const char* name) {
  cudaStream_t stream = stream_for(y.device(), name);
  SH_DISPATCH_FLOAT(y.dtype(), name, [&] {
    check(cuda::l2_normalize_backward<scalar_t>(outer, n, inner, y.data<scalar_t>(),
                                                norm.data<scalar_t>(), eps, gy.data<scalar_t>(),
                                                gx.data<scalar_t>(), stream),
          name);
  });
}

}  // namespace shallow::gpu
