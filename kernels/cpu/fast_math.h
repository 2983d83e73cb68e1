#pragma once
// Float element functions written without library calls or branches, so that loops over them
// vectorize with whatever ISA the including file is compiled for: the GEMM epilogue, the
// activations, softmax and cross-entropy. Everything here has internal linkage on purpose: each
// kernel file gets its own copy built with its own flags, and the linker can never hand an
// AVX-512 copy to a file built for another ISA. Accuracy: exp within 2 ulp over the whole float
// range (subnormal results, 0, inf and NaN included), erfc within 2e-7 relative. Lane sums are
// in lane_reduce.h.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace shallow::cpu::fast_math {
namespace {

// e^x for x in [-87, 88] to about 1 ulp: x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor
// series to degree 7 (error < 1e-8), 2^n put into the exponent bits.
inline float exp_core(float x) {
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-6f;  // ln2 in two parts
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

// e^x for every float: outside [-87, 88] as (e^(x/2))^2, which reaches the subnormals and 0
// below and the top of the range above; inf past the largest float's log, NaN as NaN.
inline float exp(float x) {
  const bool halve = x < -87.0f || x > 88.0f;
  float h = halve ? 0.5f * x : x;
  h = h < -87.0f ? -87.0f : (h > 88.0f ? 88.0f : h);  // also -inf, +inf
  float e = exp_core(h);
  e = halve ? e * e : e;
  e = x > 88.72283935546875f ? std::numeric_limits<float>::infinity() : e;
  return x != x ? x : e;
}

// Double keeps the library (the gradient checks run in double): kernels templated on the
// element type call fast_math::exp for both.
inline double exp(double x) { return std::exp(x); }

inline float sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }

// erfc(z) for z >= 0 with relative error below 2e-7 (Numerical Recipes' Chebyshev fit),
// relative rather than absolute so that gelu stays accurate far into the negative side.
inline float erfc_nonneg(float z) {
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * exp(p - z * z);
}

// Phi(x), the standard normal CDF, through erfc(|x| / sqrt 2): no cancellation on either side.
inline float normal_cdf(float x) {
  const float half_erfc = 0.5f * erfc_nonneg((x < 0.0f ? -x : x) * 0.70710678118654752f);
  return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}

// x Phi(x), the erf form of GELU.
inline float gelu_erf(float x) {
  const float e = erfc_nonneg((x < 0.0f ? -x : x) * 0.70710678118654752f);
  return x < 0.0f ? 0.5f * x * e : x * (1.0f - 0.5f * e);
}

// d/dx x Phi(x) = Phi(x) + x phi(x).
inline float gelu_erf_grad(float x) {
  return normal_cdf(x) + x * 0.39894228040143267794f * exp(-0.5f * x * x);
}

// The tanh form, with (1 + tanh(u)) / 2 == sigmoid(2u), which has no cancellation for negative u.
inline float gelu_tanh(float x) {
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return x * sigmoid(2.0f * u);
}

// d/dx x (1 + tanh u) / 2 = s + 2 x s (1 - s) u' with s = sigmoid(2u); 1 - s is taken as
// sigmoid(-2u), which keeps its digits where s is near 1.
inline float gelu_tanh_grad(float x) {
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  const float du = 0.79788456080286536f * (1.0f + 3.0f * 0.044715f * x * x);
  const float s = sigmoid(2.0f * u);
  return s + 2.0f * x * s * sigmoid(-2.0f * u) * du;
}

inline float quick_gelu(float x) { return x * sigmoid(1.702f * x); }

inline float quick_gelu_grad(float x) {
  const float s = sigmoid(1.702f * x);
  return s + x * 1.702f * s * sigmoid(-1.702f * x);  // 1 - s without the cancellation
}

}  // namespace
}  // namespace shallow::cpu::fast_math
