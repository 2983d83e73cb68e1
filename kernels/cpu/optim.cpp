#include "kernels/cpu/optim.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {
constexpr int64_t kGrain = 16384;

// Adam's per-element constants, rounded to T.
template <class T>
struct AdamScalars {
  T param_scale, wd, w1, beta2, w2, neg_step_size, bc2_sqrt, eps;
};

// Elements [b, e) of one Adam step: a plain function of restrict pointers, which the compiler
// vectorizes (the same loop inside the parallel_for lambda stayed scalar).
template <class T, bool kDecoupled, bool kCoupled, bool kAmsgrad>
void adam_range(int64_t b, int64_t e, T* __restrict param, const T* __restrict grad,
                T* __restrict exp_avg, T* __restrict exp_avg_sq, T* __restrict max_exp_avg_sq,
                const AdamScalars<T> c) {
  for (int64_t i = b; i < e; ++i) {
    T g = grad[i];
    T p = param[i];
    if constexpr (kDecoupled) p = p * c.param_scale;
    if constexpr (kCoupled) g = g + c.wd * p;
    // lerp with a weight below 0.5: start + w * (end - start)
    const T m = exp_avg[i] + c.w1 * (g - exp_avg[i]);
    const T v = exp_avg_sq[i] * c.beta2 + c.w2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    T v_used = v;
    if constexpr (kAmsgrad) {
      max_exp_avg_sq[i] = std::max(max_exp_avg_sq[i], v);
      v_used = max_exp_avg_sq[i];
    }
    const T denom = std::sqrt(v_used) / c.bc2_sqrt + c.eps;
    param[i] = p + c.neg_step_size * m / denom;
  }
}

}  // namespace

template <class T>
void sgd_update(int64_t n, T* param, const T* grad, T* buf, bool first_step, const SgdHyper& h) {
  // Scalars rounded to T, as PyTorch's ops receive them.
  const T wd = T(h.weight_decay), momentum = T(h.momentum), keep = T(1.0 - h.dampening);
  const T neg_lr = T(-h.lr);
  const bool use_momentum = h.momentum != 0.0, decay = h.weight_decay != 0.0;
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T d = decay ? grad[i] + wd * param[i] : grad[i];
      if (use_momentum) {
        // The first step starts the buffer at d itself, without dampening.
        buf[i] = first_step ? d : buf[i] * momentum + keep * d;
        d = h.nesterov ? d + momentum * buf[i] : buf[i];
      }
      param[i] = param[i] + neg_lr * d;
    }
  });
}

template <class T>
void adam_update(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
                 const AdamHyper& h) {
  const bool decay = h.weight_decay != 0.0;
  const T param_scale = T(1.0 - h.lr * h.weight_decay);  // AdamW's decoupled decay
  const T wd = T(h.weight_decay);
  const T w1 = T(1.0 - h.beta1);  // exp_avg.lerp_(g, 1 - beta1)
  const T beta2 = T(h.beta2), w2 = T(1.0 - h.beta2);
  // Bias corrections in double, as PyTorch computes them on Python floats.
  const double step = double(h.step);
  const double bias_correction1 = 1.0 - std::pow(h.beta1, step);
  const double bias_correction2 = 1.0 - std::pow(h.beta2, step);
  const T neg_step_size = T(-(h.lr / bias_correction1));
  const T bc2_sqrt = T(std::sqrt(bias_correction2));
  const T eps = T(h.eps);
  // The choices are made once, outside the loop (compile-time flags of adam_range), so that
  // the loop over the elements has no branch and vectorizes; each element's arithmetic is the
  // same.
  const AdamScalars<T> c{param_scale, wd, w1, beta2, w2, neg_step_size, bc2_sqrt, eps};
  auto run = [&](auto decoupled, auto coupled, auto amsgrad) {
    parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      adam_range<T, decltype(decoupled)::value, decltype(coupled)::value, decltype(amsgrad)::value>(
          b, e, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, c);
    });
  };
  auto with_amsgrad = [&](auto decoupled, auto coupled) {
    if (h.amsgrad) return run(decoupled, coupled, std::true_type{});
    run(decoupled, coupled, std::false_type{});
  };
  if (decay && h.decoupled_weight_decay) return with_amsgrad(std::true_type{}, std::false_type{});
  if (decay) return with_amsgrad(std::false_type{}, std::true_type{});
  with_amsgrad(std::false_type{}, std::false_type{});
}

template <class T>
double sum_abs_pow(int64_t n, const T* x, double p) {
  // Fixed blocks summed in order: the same result on any thread count.
  const int64_t blocks = (n + kGrain - 1) / kGrain;
  std::vector<double> partial(size_t(blocks), 0.0);
  parallel_for(0, blocks, 1, [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t b = blk * kGrain, e = std::min(n, b + kGrain);
      double s = 0;
      if (p == 2.0) {
        for (int64_t i = b; i < e; ++i) s += double(x[i]) * double(x[i]);
      } else if (p == 1.0) {
        for (int64_t i = b; i < e; ++i) s += std::fabs(double(x[i]));
      } else {
        for (int64_t i = b; i < e; ++i) s += std::pow(std::fabs(double(x[i])), p);
      }
      partial[size_t(blk)] = s;
    }
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

template <class T>
double max_abs(int64_t n, const T* x) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = std::fabs(double(x[i]));
    if (a > m || a != a) m = a;  // NaN propagates
    if (m != m) break;
  }
  return m;
}

template <class T>
void scale_inplace(int64_t n, T* x, double s) {
  const T f = T(s);
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] = x[i] * f;
  });
}

#define SH_INSTANTIATE(T)                                                                      \
  template void sgd_update<T>(int64_t, T*, const T*, T*, bool, const SgdHyper&);               \
  template void adam_update<T>(int64_t, T*, const T*, T*, T*, T*, const AdamHyper&);           \
  template double sum_abs_pow<T>(int64_t, const T*, double);                                   \
  template double max_abs<T>(int64_t, const T*);                                               \
  template void scale_inplace<T>(int64_t, T*, double);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cpu
