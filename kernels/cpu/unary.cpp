#include "kernels/cpu/unary.h"

#include <cmath>

#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {

constexpr int64_t kGrain = 8192;

template <class T, class F>
void map(int64_t n, const T* x, T* y, F f) {
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
  });
}

template <class T, class F>
void map_grad(int64_t n, const T* x, const T* y, const T* gy, T* gx, F f) {
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) gx[i] = gy[i] * f(x[i], y[i]);
  });
}

template <class T> T sigmoid(T v) { return T(1) / (T(1) + std::exp(-v)); }

// Constants of the GELU forms.
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kQuick = 1.702;

}  // namespace

template <class T>
void unary(UnaryOp op, int64_t n, const T* x, T* y, UnaryParams p) {
  switch (op) {
    case UnaryOp::neg: return map(n, x, y, [](T v) { return -v; });
    case UnaryOp::exp: return map(n, x, y, [](T v) { return std::exp(v); });
    case UnaryOp::log: return map(n, x, y, [](T v) { return std::log(v); });
    case UnaryOp::sqrt: return map(n, x, y, [](T v) { return std::sqrt(v); });
    case UnaryOp::rsqrt: return map(n, x, y, [](T v) { return T(1) / std::sqrt(v); });
    case UnaryOp::abs: return map(n, x, y, [](T v) { return std::fabs(v); });
    case UnaryOp::tanh: return map(n, x, y, [](T v) { return std::tanh(v); });
    case UnaryOp::sigmoid: return map(n, x, y, [](T v) { return sigmoid(v); });
    case UnaryOp::relu: return map(n, x, y, [](T v) { return v > T(0) ? v : (v != v ? v : T(0)); });
    case UnaryOp::gelu:
      return map(n, x, y, [](T v) { return T(0.5) * v * (T(1) + std::erf(v * T(kInvSqrt2))); });
    case UnaryOp::gelu_tanh:
      return map(n, x, y, [](T v) {
        return T(0.5) * v * (T(1) + std::tanh(T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v)));
      });
    case UnaryOp::quick_gelu: return map(n, x, y, [](T v) { return v * sigmoid(T(kQuick) * v); });
    case UnaryOp::elu: {
      const T alpha = T(p.p0);
      return map(n, x, y, [alpha](T v) { return v > T(0) ? v : alpha * std::expm1(v); });
    }
    case UnaryOp::softplus: {
      const T beta = T(p.p0), threshold = T(p.p1);
      return map(n, x, y, [=](T v) {
        return v * beta > threshold ? v : std::log1p(std::exp(v * beta)) / beta;
      });
    }
  }
}

template <class T>
void unary_backward(UnaryOp op, int64_t n, const T* x, const T* y, const T* gy, T* gx,
                    UnaryParams p) {
  switch (op) {
    case UnaryOp::neg: return map_grad(n, x, y, gy, gx, [](T, T) { return T(-1); });
    case UnaryOp::exp: return map_grad(n, x, y, gy, gx, [](T, T o) { return o; });
    case UnaryOp::log: return map_grad(n, x, y, gy, gx, [](T v, T) { return T(1) / v; });
    case UnaryOp::sqrt: return map_grad(n, x, y, gy, gx, [](T, T o) { return T(0.5) / o; });
    case UnaryOp::rsqrt: return map_grad(n, x, y, gy, gx, [](T v, T o) { return T(-0.5) * o / v; });
    case UnaryOp::abs:
      return map_grad(n, x, y, gy, gx, [](T v, T) { return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0)); });
    case UnaryOp::tanh: return map_grad(n, x, y, gy, gx, [](T, T o) { return T(1) - o * o; });
    case UnaryOp::sigmoid: return map_grad(n, x, y, gy, gx, [](T, T o) { return o * (T(1) - o); });
    case UnaryOp::relu: return map_grad(n, x, y, gy, gx, [](T v, T) { return v > T(0) ? T(1) : T(0); });
    case UnaryOp::gelu:
      return map_grad(n, x, y, gy, gx, [](T v, T) {
        const T cdf = T(0.5) * (T(1) + std::erf(v * T(kInvSqrt2)));
        const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
        return cdf + v * pdf;
      });
    case UnaryOp::gelu_tanh:
      return map_grad(n, x, y, gy, gx, [](T v, T) {
        const T inner = T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v);
        const T th = std::tanh(inner);
        const T dinner = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * v * v);
        return T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * dinner;
      });
    case UnaryOp::quick_gelu:
      return map_grad(n, x, y, gy, gx, [](T v, T) {
        const T s = sigmoid(T(kQuick) * v);
        return s + v * T(kQuick) * s * (T(1) - s);
      });
    case UnaryOp::elu: {
      const T alpha = T(p.p0);
      return map_grad(n, x, y, gy, gx, [alpha](T v, T o) { return v > T(0) ? T(1) : o + alpha; });
    }
    case UnaryOp::softplus: {
      const T beta = T(p.p0), threshold = T(p.p1);
      return map_grad(n, x, y, gy, gx, [=](T v, T) {
        return v * beta > threshold ? T(1) : sigmoid(v * beta);
      });
    }
  }
}

template void unary<float>(UnaryOp, int64_t, const float*, float*, UnaryParams);
template void unary<double>(UnaryOp, int64_t, const double*, double*, UnaryParams);
template void unary_backward<float>(UnaryOp, int64_t, const float*, const float*, const float*,
                                    float*, UnaryParams);
template void unary_backward<double>(UnaryOp, int64_t, const double*, const double*, const double*,
                                     double*, UnaryParams);

}  // namespace shallow::cpu
