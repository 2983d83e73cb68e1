#include "kernels/cuda/optim.h"

#include <cmath>

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// The scalars of one step, rounded to T on the host exactly as the CPU kernel rounds them.
template <class T>
struct AdamScalars {
  T param_scale, wd, w1, beta2, w2, neg_step_size, bc2_sqrt, eps;
  bool decay, decoupled, amsgrad;
};

template <class T>
__global__ void adam_kernel(int64_t n, T* __restrict__ param, const T* __restrict__ grad,
                            T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq,
                            T* __restrict__ max_exp_avg_sq, AdamScalars<T> c) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    T g = grad[i];
    T p = param[i];
    if (c.decay) {
      if (c.decoupled) p = p * c.param_scale;
      else g = g + c.wd * p;
    }
    const T m = exp_avg[i] + c.w1 * (g - exp_avg[i]);
    const T v = exp_avg_sq[i] * c.beta2 + c.w2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    T v_used = v;
    if (c.amsgrad) {
      const T prev = max_exp_avg_sq[i];
      v_used = prev < v ? v : prev;  // std::max(prev, v), NaN included
      max_exp_avg_sq[i] = v_used;
    }
    const T denom = d_sqrt(v_used) / c.bc2_sqrt + c.eps;
    param[i] = p + c.neg_step_size * m / denom;
  }
}

}  // namespace

template <class T>
Status adam_update(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq,
                   T* max_exp_avg_sq, const AdamHyper& h, cudaStream_t stream) {
  if (n == 0) return ok_status();
  if (h.amsgrad && !max_exp_avg_sq) return Status{"adam_update", "amsgrad without max_exp_avg_sq"};
  const double step = double(h.step);
  const double bias_correction1 = 1.0 - std::pow(h.beta1, step);
  const double bias_correction2 = 1.0 - std::pow(h.beta2, step);
  AdamScalars<T> c;
  c.param_scale = T(1.0 - h.lr * h.weight_decay);
  c.wd = T(h.weight_decay);
  c.w1 = T(1.0 - h.beta1);
  c.beta2 = T(h.beta2);
  c.w2 = T(1.0 - h.beta2);
  c.neg_step_size = T(-(h.lr / bias_correction1));
  c.bc2_sqrt = T(std::sqrt(bias_correction2));
  c.eps = T(h.eps);
  c.decay = h.weight_decay != 0.0;
  c.decoupled = h.decoupled_weight_decay;
  c.amsgrad = h.amsgrad;
  adam_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, param, grad, exp_avg, exp_avg_sq,
                                                      max_exp_avg_sq, c);
  return launch_status("adam_kernel");
}

template Status adam_update<float>(int64_t, float*, const float*, float*, float*, float*,
                                   const AdamHyper&, cudaStream_t);
template Status adam_update<double>(int64_t, double*, const double*, double*, double*, double*,
                                    const AdamHyper&, cudaStream_t);

}  // namespace shallow::cuda
