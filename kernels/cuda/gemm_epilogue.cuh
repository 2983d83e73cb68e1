#pragma once
// The GEMM epilogue on the device: what each kernel applies to an output element once its sum
// is complete, the contract of cpu::gemm_ex (kernels/cpu/gemm.h):
//   C = act(alpha * sum + beta * C + bias)
// with bias per column (bias[N]) or per row (bias[M]). Computed in the accumulation type
// (float for float and bf16, double for double) and rounded to the storage type once.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cpu/gemm.h"
#include "kernels/cuda/convert.cuh"

namespace shallow::cuda {

using cpu::GemmActivation;

// ---- the activations, float and double (float avoids promotion to double)

__device__ inline float act_relu(float x) { return x > 0.0f ? x : (x != x ? x : 0.0f); }
__device__ inline double act_relu(double x) { return x > 0.0 ? x : (x != x ? x : 0.0); }

__device__ inline float act_gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ inline double act_gelu(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440)); }

// (1 + tanh(u)) / 2 == sigmoid(2u): no cancellation for large negative u.
__device__ inline float act_gelu_tanh(float x) {
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return x / (1.0f + expf(-2.0f * u));
}
__device__ inline double act_gelu_tanh(double x) {
  return 0.5 * x * (1.0 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
}

__device__ inline float act_quick_gelu(float x) { return x / (1.0f + expf(-1.702f * x)); }
__device__ inline double act_quick_gelu(double x) { return x / (1.0 + exp(-1.702 * x)); }

// The same for results rounded to 16 bits afterwards: the exponential and the division by the
// fast intrinsics (relative error near 1e-6, far below a bf16 step of 4e-3), which keeps the
// epilogue from being bound by the instruction issue rate. Limits are unchanged: a denominator
// of inf gives -0 or 0, as x / inf does.
__device__ inline float act_gelu_tanh_fast(float x) {
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return __fdividef(x, 1.0f + __expf(-2.0f * u));
}
__device__ inline float act_quick_gelu_fast(float x) {
  return __fdividef(x, 1.0f + __expf(-1.702f * x));
}

template <class Acc>
__device__ inline Acc apply_activation(GemmActivation act, Acc v) {
  switch (act) {
    case GemmActivation::none: return v;
    case GemmActivation::relu: return act_relu(v);
    case GemmActivation::gelu: return act_gelu(v);
    case GemmActivation::gelu_tanh: return act_gelu_tanh(v);
    case GemmActivation::quick_gelu: return act_quick_gelu(v);
  }
  return v;
}

// apply_activation for a result stored as T: the fast forms where T has 16 bits.
template <class T, class Acc>
__device__ inline Acc apply_activation_for(GemmActivation act, Acc v) {
  if constexpr (sizeof(T) == 2 && std::is_same_v<Acc, float>) {
    if (act == GemmActivation::gelu_tanh) return act_gelu_tanh_fast(v);
    if (act == GemmActivation::quick_gelu) return act_quick_gelu_fast(v);
  }
  return apply_activation(act, v);
}

// The epilogue as a kernel argument: plain values, copied to the device with the launch.
template <class T>
struct DeviceEpilogue {
  using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
  Acc alpha = Acc(1), beta = Acc(0);
  const T* bias = nullptr;
  bool bias_per_row = false;
  GemmActivation act = GemmActivation::none;

  // The final value of C[row][col] from its sum; `c` is read only when beta != 0 (so a C
  // full of NaN or garbage is overwritten cleanly with beta == 0, as BLAS does).
  __device__ inline T finish(Acc sum, const T* c, int64_t row, int64_t col) const {
    Acc v = alpha * sum;
    if (beta != Acc(0)) v += beta * Acc(widen(*c));
    if (bias != nullptr) v += Acc(widen(bias[bias_per_row ? row : col]));
    return convert<T>(apply_activation_for<T>(act, v));
  }
};

template <class T>
DeviceEpilogue<T> device_epilogue(typename DeviceEpilogue<T>::Acc alpha,
                                  typename DeviceEpilogue<T>::Acc beta,
                                  const cpu::GemmEpilogue<T>& ep) {
  DeviceEpilogue<T> d;
  d.alpha = alpha;
  d.beta = beta;
  d.bias = ep.bias;
  d.bias_per_row = ep.bias_per_row;
  d.act = ep.act;
  return d;
}

}  // namespace shallow::cuda
