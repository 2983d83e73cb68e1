#include "kernels/cuda/unary.h"

#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kQuick = 1.702;

template <class T> __device__ inline T sigmoid(T v) { return T(1) / (T(1) + d_exp(-v)); }

// The op is the same for every thread, so the switch does not diverge.
template <class T>
__device__ inline T forward_value(UnaryOp op, T v, T p0, T p1) {
  switch (op) {
    case UnaryOp::neg: return -v;
    case UnaryOp::exp: return d_exp(v);
    case UnaryOp::log: return d_log(v);
    case UnaryOp::sqrt: return d_sqrt(v);
    case UnaryOp::rsqrt: return T(1) / d_sqrt(v);
    case UnaryOp::abs: return d_abs(v);
    case UnaryOp::tanh: return d_tanh(v);
    case UnaryOp::sigmoid: return sigmoid(v);
    case UnaryOp::relu: return v > T(0) ? v : (v != v ? v : T(0));
    case UnaryOp::gelu: return T(0.5) * v * (T(1) + d_erf(v * T(kInvSqrt2)));
    case UnaryOp::gelu_tanh:
      return T(0.5) * v * (T(1) + d_tanh(T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v)));
    case UnaryOp::quick_gelu: return v * sigmoid(T(kQuick) * v);
    case UnaryOp::elu: return v > T(0) ? v : p0 * d_expm1(v);
    case UnaryOp::softplus: return v * p0 > p1 ? v : d_log1p(d_exp(v * p0)) / p0;
  }
  return v;
}

// f'(x), given x and y = f(x).
template <class T>
__device__ inline T derivative(UnaryOp op, T v, T o, T p0, T p1) {
  switch (op) {
    case UnaryOp::neg: return T(-1);
    case UnaryOp::exp: return o;
    case UnaryOp::log: return T(1) / v;
    case UnaryOp::sqrt: return T(0.5) / o;
    case UnaryOp::rsqrt: return T(-0.5) * o / v;
    case UnaryOp::abs: return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0));
    case UnaryOp::tanh: return T(1) - o * o;
    case UnaryOp::sigmoid: return o * (T(1) - o);
    case UnaryOp::relu: return v > T(0) ? T(1) : T(0);
    case UnaryOp::gelu: {
      const T cdf = T(0.5) * (T(1) + d_erf(v * T(kInvSqrt2)));
      const T pdf = T(kInvSqrt2Pi) * d_exp(T(-0.5) * v * v);
      return cdf + v * pdf;
    }
    case UnaryOp::gelu_tanh: {
      const T inner = T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v);
      const T th = d_tanh(inner);
      const T dinner = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * v * v);
      return T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * dinner;
    }
    case UnaryOp::quick_gelu: {
      const T s = sigmoid(T(kQuick) * v);
      return s + v * T(kQuick) * s * (T(1) - s);
    }
    case UnaryOp::elu: return v > T(0) ? T(1) : o + p0;
    case UnaryOp::softplus: return v * p0 > p1 ? T(1) : sigmoid(v * p0);
  }
  return T(0);
}

// 16-bit types are widened to float for the op and rounded once, as the CPU computes them.
template <class T>
__global__ void unary_kernel(UnaryOp op, int64_t n, const T* __restrict__ x, T* __restrict__ y,
                             widened_t<T> p0, widened_t<T> p1) {
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    y[i] = convert<T>(forward_value(op, widen(x[i]), p0, p1));
}

// bf16/f16 with 16-byte aligned pointers: eight elements per load and store.
template <class T>
__global__ void unary_kernel_half8(UnaryOp op, int64_t n8, const uint4* __restrict__ x,
                                   uint4* __restrict__ y, float p0, float p1) {
  for (int64_t i = global_thread(); i < n8; i += grid_threads()) {
    uint4 raw = x[i];
    uint16_t* h = reinterpret_cast<uint16_t*>(&raw);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      T v;
      v.bits = h[k];
      h[k] = convert<T>(forward_value(op, widen(v), p0, p1)).bits;
    }
    y[i] = raw;
  }
}

// float with 16-byte aligned pointers: four elements per load and store.
__global__ void unary_kernel_vec4(UnaryOp op, int64_t n4, const float4* __restrict__ x,
                                  float4* __restrict__ y, float p0, float p1) {
  for (int64_t i = global_thread(); i < n4; i += grid_threads()) {
    float4 v = x[i];
    v.x = forward_value(op, v.x, p0, p1);
    v.y = forward_value(op, v.y, p0, p1);
    v.z = forward_value(op, v.z, p0, p1);
    v.w = forward_value(op, v.w, p0, p1);
    y[i] = v;
  }
}

template <class T>
__global__ void unary_backward_kernel(UnaryOp op, int64_t n, const T* __restrict__ x,
                                      const T* __restrict__ y, const T* __restrict__ gy,
                                      T* __restrict__ gx, T p0, T p1) {
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    gx[i] = gy[i] * derivative(op, x[i], y[i], p0, p1);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

template <class T>
Status unary(UnaryOp op, int64_t n, const T* x, T* y, UnaryParams p, cudaStream_t stream) {
  if (n == 0) return ok_status();
  if constexpr (std::is_same_v<T, float>) {
    if (aligned16(x) && aligned16(y)) {
      const int64_t n4 = n / 4;
      if (n4 > 0) {
        unary_kernel_vec4<<<blocks_for(n4), kThreads, 0, stream>>>(
            op, n4, reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(y), float(p.p0),
            float(p.p1));
        Status s = launch_status("unary_kernel_vec4");
        if (!s.ok()) return s;
      }
      const int64_t done = n4 * 4;
      if (done == n) return ok_status();
      unary_kernel<<<1, kThreads, 0, stream>>>(op, n - done, x + done, y + done, float(p.p0),
                                               float(p.p1));
      return launch_status("unary_kernel");
    }
  }
  using W = widened_t<T>;
  if constexpr (is_half_v<T>) {
    if (aligned16(x) && aligned16(y)) {
      const int64_t n8 = n / 8;
      if (n8 > 0) {
        unary_kernel_half8<T><<<blocks_for(n8), kThreads, 0, stream>>>(
            op, n8, reinterpret_cast<const uint4*>(x), reinterpret_cast<uint4*>(y), float(p.p0),
            float(p.p1));
        Status s = launch_status("unary_kernel_half8");
        if (!s.ok()) return s;
      }
      const int64_t done = n8 * 8;
      if (done == n) return ok_status();
      unary_kernel<<<1, kThreads, 0, stream>>>(op, n - done, x + done, y + done, W(p.p0), W(p.p1));
      return launch_status("unary_kernel");
    }
  }
  unary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, n, x, y, W(p.p0), W(p.p1));
  return launch_status("unary_kernel");
}

template <class T>
Status unary_backward(UnaryOp op, int64_t n, const T* x, const T* y, const T* gy, T* gx,
                      UnaryParams p, cudaStream_t stream) {
  if (n == 0) return ok_status();
  unary_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, n, x, y, gy, gx, T(p.p0),
                                                                 T(p.p1));
  return launch_status("unary_backward_kernel");
}

template Status unary<float>(UnaryOp, int64_t, const float*, float*, UnaryParams, cudaStream_t);
template Status unary<double>(UnaryOp, int64_t, const double*, double*, UnaryParams, cudaStream_t);
template Status unary<bf16>(UnaryOp, int64_t, const bf16*, bf16*, UnaryParams, cudaStream_t);
template Status unary<f16>(UnaryOp, int64_t, const f16*, f16*, UnaryParams, cudaStream_t);
template Status unary_backward<float>(UnaryOp, int64_t, const float*, const float*, const float*,
                                      float*, UnaryParams, cudaStream_t);
template Status unary_backward<double>(UnaryOp, int64_t, const double*, const double*,
                                       const double*, double*, UnaryParams, cudaStream_t);

}  // namespace shallow::cuda
