#pragma once
// Fused optimizer updates: one pass over a parameter, its gradient and its state, in place.
// Each follows PyTorch's single-tensor update literally (same operations in the same order,
// scalars rounded to the element type where PyTorch rounds them), so runs match step by step.
#include <cstdint>

namespace shallow::cpu {

struct SgdHyper {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

// d = g + wd * p; with momentum: buf = d on the first step (first_step), else
// buf = momentum * buf + (1 - dampening) * d; d = nesterov ? d + momentum * buf : buf;
// p -= lr * d. momentum_buffer may be null when momentum == 0.
template <class T>
void sgd_update(int64_t n, T* param, const T* grad, T* momentum_buffer, bool first_step,
                const SgdHyper& h);

struct AdamHyper {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled_weight_decay = false;  // AdamW: p *= 1 - lr * wd before the update
  bool amsgrad = false;
  int64_t step = 1;  // this update's step number, from 1 (for the bias corrections)
};

// Adam / AdamW. max_exp_avg_sq is used (and may only be non-null) with amsgrad.
template <class T>
void adam_update(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
                 const AdamHyper& h);

// Pieces of a gradient norm: sum of |g|^p (p > 0, finite), or max |g| (p = inf), in double.
template <class T>
double sum_abs_pow(int64_t n, const T* x, double p);
template <class T>
double max_abs(int64_t n, const T* x);
// x *= s, with s rounded to T first.
template <class T>
void scale_inplace(int64_t n, T* x, double s);

}  // namespace shallow::cpu
