// Cross-entropy on CUDA tensors.
#include "engine/cuda/loss_ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/loss.h"

namespace shallow::gpu {

void cross_entropy(int64_t rows, int64_t classes, const Tensor& logits, const Tensor& target,
                   double smoothing, Tensor& loss, Tensor& lse, const char* name) {
  cudaStream_t stream = stream_for(logits.device(), name);
  SH_DISPATCH_FLOAT(logits.dtype(), name, [&] {
    check(cuda::cross_entropy<scalar_t>(rows, classes, logits.data<scalar_t>(),
                                        target.data<int64_t>(), smoothing, loss.data<scalar_t>(),
                                        lse.data<scalar_t>(), stream),
          name);
  });
}

void cross_entropy_backward(int64_t rows, int64_t classes, const Tensor& logits,
                            const Tensor& target, double smoothing, const Tensor& lse,
                            const Tensor& row_scale, Tensor& gx, const char* name) {
  cudaStream_t stream = stream_for(logits.device(), name);
  SH_DISPATCH_FLOAT(logits.dtype(), name, [&] {
    check(cuda::cross_entropy_backward<scalar_t>(
              rows, classes, logits.data<scalar_t>(), target.data<int64_t>(), smoothing,
              lse.data<scalar_t>(), row_scale.data<scalar_t>(), gx.data<scalar_t>(), stream),
          name);
  });
}

}  // namespace shallow::gpu
