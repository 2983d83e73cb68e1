#include "kernels/cuda/sgd.h"

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// The scalars rounded to T on the host, as the CPU kernel rounds them.
template <class T>
struct SgdScalars {
  T wd, momentum, keep, neg_lr;
  bool decay, use_momentum, nesterov, first_step;
};

template <class T>
__global__ void sgd_kernel(int64_t n, T* __restrict__ param, const T* __restrict__ grad,
                           T* __restrict__ buf, SgdScalars<T> c) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    T d = c.decay ? grad[i] + c.wd * param[i] : grad[i];
    if (c.use_momentum) {
      // The first step starts the buffer at d itself, without dampening.
      const T b = c.first_step ? d : buf[i] * c.momentum + c.keep * d;
      buf[i] = b;
      d = c.nesterov ? d + c.momentum * b : b;
    }
    param[i] = param[i] + c.neg_lr * d;
  }
}

}  // namespace

template <class T>
Status sgd_update(int64_t n, T* param, const T* grad, T* momentum_buffer, bool first_step,
                  const SgdHyper& h, cudaStream_t stream) {
  if (n <= 0) return ok_status();
  SgdScalars<T> c;
  c.wd = T(h.weight_decay);
  c.momentum = T(h.momentum);
  c.keep = T(1.0 - h.dampening);
  c.neg_lr = T(-h.lr);
  c.decay = h.weight_decay != 0.0;
  c.use_momentum = h.momentum != 0.0;
  c.nesterov = h.nesterov;
  c.first_step = first_step;
  if (c.use_momentum && !momentum_buffer)
    return Status{"sgd_update", "momentum without a momentum buffer"};
  sgd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(n, param, grad, momentum_buffer, c);
  return launch_status("sgd_kernel");
}

template Status sgd_update<float>(int64_t, float*, const float*, float*, bool, const SgdHyper&,
                                  cudaStream_t);
template Status sgd_update<double>(int64_t, double*, const double*, double*, bool, const SgdHyper&,
                                   cudaStream_t);

}  // namespace shallow::cuda
