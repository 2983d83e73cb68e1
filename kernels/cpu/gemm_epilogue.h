#pragma once
// The gemm epilogue: bias and activation over a tile, the float activations from fast_math.h
// (vectorizable, no library calls). Everything here has internal linkage on purpose: each
// kernel file gets its own copy built with its own flags, and the linker can never hand an
// AVX-512 copy to the generic path.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/gemm.h"

namespace shallow::cpu::gemm_detail {
namespace {

using fast_math::gelu_erf;
using fast_math::gelu_tanh;
using fast_math::quick_gelu;

inline float relu(float x) { return x > 0.0f ? x : (x != x ? x : 0.0f); }

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
