// Batch norm on CUDA tensors.
#include "engine/cuda/conv_ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/batch_norm.h"

namespace shallow::gpu {
namespace {
template <class T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// The kernels' scratch for their partial sums, from the caching allocator.
Tensor scratch_for(int64_t N, int64_t C, int64_t S, Device d) {
  return Tensor::empty({int64_t(cuda::batch_norm_scratch_bytes(N, C, S))}, DType::u8, d);
}
}  // namespace

void batch_norm_stats(int64_t N, int64_t C, int64_t S, const Tensor& x, Tensor& mean,
                      Tensor& var, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  Tensor scratch = scratch_for(N, C, S, x.device());
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::batch_norm_stats<scalar_t>(N, C, S, x.data<scalar_t>(), mean.data<scalar_t>(),
                                           var.data<scalar_t>(), scratch.raw_data(),
                                           size_t(scratch.numel()), stream),
          name);
  });
}

void batch_norm_apply(int64_t N, int64_t C, int64_t S, const Tensor& x, const Tensor& mean,
                      const Tensor& invstd, const Tensor& weight, const Tensor& bias, Tensor& y,
                      const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::batch_norm_apply<scalar_t>(N, C, S, x.data<scalar_t>(), mean.data<scalar_t>(),
                                           invstd.data<scalar_t>(), data_or_null<scalar_t>(weight),
                                           data_or_null<scalar_t>(bias), y.data<scalar_t>(),
                                           stream),
          name);
  });
}

void batch_norm_backward(int64_t N, int64_t C, int64_t S, const Tensor& x, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight, const Tensor& gy,
                         bool batch_stats, Tensor& gx, Tensor& gweight, Tensor& gbias,
                         const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  Tensor scratch = scratch_for(N, C, S, x.device());
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::batch_norm_backward<scalar_t>(
              N, C, S, x.data<scalar_t>(), mean.data<scalar_t>(), invstd.data<scalar_t>(),
              data_or_null<scalar_t>(weight), gy.data<scalar_t>(), batch_stats,
              data_or_null<scalar_t>(gx), data_or_null<scalar_t>(gweight),
              data_or_null<scalar_t>(gbias), scratch.raw_data(), size_t(scratch.numel()),
              stream),
          name);
  });
}

}  // namespace shallow::gpu
