// SGD and the pieces of gradient clipping on CUDA tensors.
#include "engine/cuda/optim_ops.h"

#include <map>

#include "engine/cuda/runtime.h"
#include "kernels/cuda/grad_norm.h"
#include "kernels/cuda/sgd.h"

namespace shallow::gpu {

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, bool first_step,
                const cpu::SgdHyper& h, const char* name) {
  cudaStream_t stream = stream_for(param.device(), name);
  SH_DISPATCH_FLOAT(param.dtype(), name, [&] {
    check(cuda::sgd_update<scalar_t>(
              param.numel(), param.data<scalar_t>(), grad.data<scalar_t>(),
              momentum_buffer.defined() ? momentum_buffer.data<scalar_t>() : nullptr, first_step, h,
              stream),
          name);
  });
}

std::vector<double> abs_pow_sums(const std::vector<Tensor>& xs, double p, const char* name) {
  std::vector<double> result(xs.size(), 0.0);
  // Tensor positions by device index, so that each device gets one results array and one copy.
  std::map<int, std::vector<size_t>> by_device;
  for (size_t i = 0; i < xs.size(); ++i) by_device[xs[i].device().index].push_back(i);
  for (const auto& [index, positions] : by_device) {
    const Device device = Device::cuda(index);
    cudaStream_t stream = stream_for(device, name);
    // One results slot per tensor, then the partials scratch (reused: the stream runs in order).
    const int64_t count = int64_t(positions.size());
    Tensor scratch = Tensor::empty({count + cuda::kNormPartials}, DType::f64, device);
    double* sums = scratch.data<double>();
    double* partials = sums + count;
    for (int64_t k = 0; k < count; ++k) {
      const Tensor& x = xs[positions[size_t(k)]];
      SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
        check(cuda::abs_pow_sum<scalar_t>(x.numel(), x.data<scalar_t>(), p, partials, sums + k,
                                          stream),
              name);
      });
    }
    // The one read back to the host (a synchronizing copy).
    const std::vector<double> host = scratch.narrow(0, 0, count).to_vector<double>();
    for (int64_t k = 0; k < count; ++k) result[positions[size_t(k)]] = host[size_t(k)];
  }
  return result;
}

void scale_inplace(Tensor& x, double s, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::scale_inplace<scalar_t>(x.numel(), x.data<scalar_t>(), s, stream), name);
  });
}

}  // namespace shallow::gpu
