#pragma once
// The gemm epilogue's element functions, written without library calls or branches so that
// the loops over a tile's row vectorize with whatever ISA the including file is compiled for.
// Everything here has internal linkage on purpose: each kernel file gets its own copy built
// with its own flags, and the linker can never hand an AVX-512 copy to the generic path.
#include <bit>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/gemm.h"

namespace shallow::cpu::gemm_detail {
namespace {

// e^x for float to about 1 ulp: x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor series to
// degree 7 (error < 1e-8), 2^n put into the exponent bits. Inputs are clamped to the range
// where the result is a normal float.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
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

inline float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

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
  return t * exp_approx(p - z * z);
}

inline float relu(float x) { return x > 0.0f ? x : (x != x ? x : 0.0f); }

// x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, through erfc(|x| / sqrt 2).
inline float gelu_erf(float x) {
  const float e = erfc_nonneg((x < 0.0f ? -x : x) * 0.70710678118654752f);
  return x < 0.0f ? 0.5f * x * e : x * (1.0f - 0.5f * e);
}

// (1 + tanh(u)) / 2 == sigmoid(2u), which has no cancellation for negative u.
inline float gelu_tanh(float x) {
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return x * sigmoid_approx(2.0f * u);
}

inline float quick_gelu(float x) { return x * sigmoid_approx(1.702f * x); }

// Double (the generic path, used for gradient checks) takes the library functions.
inline double relu(double x) { return x > 0.0 ? x : (x != x ? x : 0.0); }
inline double gelu_erf(double x) { return 0.5 * x * (1.0 + std::erf(x * 0.70710678118654752440)); }
inline double gelu_tanh(double x) {
  return 0.5 * x * (1.0 + std::tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
}
inline double quick_gelu(double x) { return x / (1.0 + std::exp(-1.702 * x)); }

template <class T, class F>
inline void map_tile(T* c, int64_t ldc, int64_t m, int64_t n, const T* bias, bool per_row, F f) {
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (bias == nullptr) {
      for (int64_t j = 0; j < n; ++j) row[j] = f(row[j]);
    } else if (per_row) {
      const T b = bias[i];
      for (int64_t j = 0; j < n; ++j) row[j] = f(row[j] + b);
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] = f(row[j] + bias[j]);
    }
  }
}

template <class T>
void apply_epilogue(T* c, int64_t ldc, int64_t m, int64_t n, const T* bias, bool per_row,
                    GemmActivation act) {
  switch (act) {
    case GemmActivation::none:
      return map_tile(c, ldc, m, n, bias, per_row, [](T v) { return v; });
    case GemmActivation::relu:
      return map_tile(c, ldc, m, n, bias, per_row, [](T v) { return relu(v); });
    case GemmActivation::gelu:
      return map_tile(c, ldc, m, n, bias, per_row, [](T v) { return gelu_erf(v); });
    case GemmActivation::gelu_tanh:
      return map_tile(c, ldc, m, n, bias, per_row, [](T v) { return gelu_tanh(v); });
    case GemmActivation::quick_gelu:
      return map_tile(c, ldc, m, n, bias, per_row, [](T v) { return quick_gelu(v); });
  }
}

}  // namespace
}  // namespace shallow::cpu::gemm_detail
