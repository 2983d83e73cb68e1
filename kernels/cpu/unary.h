#pragma once
// Elementwise unary ops and their derivatives on contiguous arrays.
#include <cstdint>

namespace shallow::cpu {

enum class UnaryOp {
  neg, exp, log, sqrt, rsqrt, abs, tanh, sigmoid, relu,
  gelu,        // x * Phi(x), the erf form
  gelu_tanh,   // the tanh approximation
  quick_gelu,  // x * sigmoid(1.702 x)
  elu,         // p0 = alpha
  softplus,    // p0 = beta, p1 = threshold (linear above it, as PyTorch)
};

struct UnaryParams {
  double p0 = 0, p1 = 0;
};

template <class T>
void unary(UnaryOp op, int64_t n, const T* x, T* y, UnaryParams p = {});

// gx = gy * f'(x); y = f(x) is given too (some derivatives are cheaper from it).
template <class T>
void unary_backward(UnaryOp op, int64_t n, const T* x, const T* y, const T* gy, T* gx,
                    UnaryParams p = {});

}  // namespace shallow::cpu
