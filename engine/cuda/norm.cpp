// Layer norm on CUDA tensors.
#include "engine/cuda/ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/norm.h"

namespace shallow::gpu {
namespace {
template <class T> const T* data_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
template <class T> T* mutable_or_null(Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
}  // namespace

void layer_norm(int64_t rows, int64_t n, const Tensor& x, const Tensor& weight,
                const Tensor& bias, double eps, Tensor& y, Tensor& mean, Tensor& rstd,
                const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  if (is_half(x.dtype())) {  // statistics in f32
    auto run = [&](auto tag) {
      using T = decltype(tag);
      check(cuda::layer_norm<T, float>(rows, n, x.data<T>(), data_or_null<T>(weight),
                                       data_or_null<T>(bias), eps, y.data<T>(), mean.data<float>(),
                                       rstd.data<float>(), stream),
            name);
    };
    return x.dtype() == DType::bf16 ? run(bf16{}) : run(f16{});
  }
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::layer_norm<scalar_t>(rows, n, x.data<scalar_t>(), data_or_null<scalar_t>(weight),
                                     data_or_null<scalar_t>(bias), eps, y.data<scalar_t>(),
                                     mean.data<scalar_t>(), rstd.data<scalar_t>(), stream),
          name);
  });
}

void layer_norm_backward(int64_t rows, int64_t n, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, const Tensor& gy, Tensor& gx,
                         Tensor& gweight, Tensor& gbias, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::layer_norm_backward<scalar_t>(
              rows, n, x.data<scalar_t>(), mean.data<scalar_t>(), rstd.data<scalar_t>(),
              data_or_null<scalar_t>(weight), gy.data<scalar_t>(), mutable_or_null<scalar_t>(gx),
              mutable_or_null<scalar_t>(gweight), mutable_or_null<scalar_t>(gbias), stream),
          name);
  });
}

}  // namespace shallow::gpu
