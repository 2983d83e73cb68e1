#pragma once
// The reference the GEMM kernel tests check C against: the double product of the same
// (dtype-rounded) operands, with alpha, beta, bias and activation applied as the kernels' store
// does, and a tolerance that bounds the rounding a kernel may do. Shared by test_gpu_gemm.cpp
// and test_gpu_gemm_wgmma.cpp.
#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <vector>

#include <gtest/gtest.h>

#include "engine/dtype.h"
#include "kernels/cpu/gemm.h"

namespace shallow::testing {

// The activation's name, for test messages.
inline const char* act_name(cpu::GemmActivation act) {
  using cpu::GemmActivation;
  switch (act) {
    case GemmActivation::none: return "none";
    case GemmActivation::relu: return "relu";
    case GemmActivation::gelu: return "gelu";
    case GemmActivation::gelu_tanh: return "gelu_tanh";
    case GemmActivation::quick_gelu: return "quick_gelu";
  }
  return "?";
}

inline double activate(cpu::GemmActivation act, double v) {
  using cpu::GemmActivation;
  switch (act) {
    case GemmActivation::none: return v;
    case GemmActivation::relu: return v > 0 ? v : 0;
    case GemmActivation::gelu: return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    case GemmActivation::gelu_tanh:
      return 0.5 * v * (1 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
    case GemmActivation::quick_gelu: return v / (1 + std::exp(-1.702 * v));
  }
  return v;
}

// What a GEMM call computed: C is [batch, M, ldc] (columns N.. are padding).
struct GemmShape {
  DType dtype;  // bf16 or f32
  int64_t batch, M, N, K, ldc;
  double alpha = 1, beta = 0;
  bool bias_per_row = false;
  cpu::GemmActivation act = cpu::GemmActivation::none;
  // Roundings to the output type on the way: 1 where the epilogue runs on the accumulators
  // (our kernels, cuBLASLt's folded epilogue), 2 where a product is stored and a separate pass
  // then adds the rest (cuBLAS, then bias or activation). Each bf16 rounding is within 2^-9 of
  // the value, and the activations' slopes stay below 1.2, so the second one adds 1.5 units
  // to the bound like the first.
  int roundings = 1;
};

// op(A)[b][i][k] and op(B)[b][k][j] as the kernel read them.
using OperandAt = std::function<double(int64_t b, int64_t row, int64_t col)>;

// Checks every element of `got` (C after the call, [batch, M, ldc]) against the reference, with
// c0 the C the call started from and bias (empty: none) the bias; the padding of C's rows must
// stay NaN. The tolerance is `unit` (2^-8 for bf16, 2^-24 for f32) times a bound of the
// rounding: bf16: the output's rounding (2^-9 relative) and f32 sums, which are off by about
// sqrt(K) roundings of the row norm products' size, both within 2^-8 of this scale; f32: K
// sums in any order, about sqrt(K) roundings of the absolute sum. Reports at most 5 failures.
inline void expect_gemm_result(const GemmShape& s, const OperandAt& a_at, const OperandAt& b_at,
                               const std::vector<double>& c0, const std::vector<double>& bias,
                               const std::vector<double>& got) {
  const double unit = s.dtype == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -24);
  int bad = 0;
  for (int64_t b = 0; b < s.batch && bad < 5; ++b) {
    for (int64_t i = 0; i < s.M && bad < 5; ++i) {
      for (int64_t j = 0; j < s.ldc && bad < 5; ++j) {
        const size_t at = size_t((b * s.M + i) * s.ldc + j);
        if (j >= s.N) {  // padding: untouched
          if (!std::isnan(got[at])) ++bad, ADD_FAILURE() << "padding written at " << b << "," << i << "," << j;
          continue;
        }
        double sum = 0, sum_abs = 0, norm_a = 0, norm_b = 0;
        for (int64_t k = 0; k < s.K; ++k) {
          const double x = a_at(b, i, k), y = b_at(b, k, j);
          sum += x * y;
          sum_abs += std::fabs(x * y);
          norm_a += x * x;
          norm_b += y * y;
        }
        double pre = s.alpha * sum, scale = std::fabs(s.alpha * sum);
        if (s.beta != 0) {
          pre += s.beta * c0[at];
          scale += std::fabs(s.beta * c0[at]);
        }
        if (!bias.empty()) {
          const double v = bias[size_t(s.bias_per_row ? i : j)];
          pre += v;
          scale += std::fabs(v);
        }
        const double want = activate(s.act, pre);
        double tol;
        if (s.dtype == DType::bf16)
          tol = 1.5 * s.roundings * unit * (scale + std::fabs(s.alpha) * std::sqrt(norm_a * norm_b) /
                                          std::sqrt(double(std::max<int64_t>(s.K, 1))));
        else
          tol = 1.5 * unit * (4 * std::sqrt(double(s.K)) + 8) * (std::fabs(s.alpha) * sum_abs + scale);
        tol += 1e-300;
        if (!(std::fabs(got[at] - want) <= tol)) {
          ++bad;
          ADD_FAILURE() << "C[" << b << "][" << i << "][" << j << "] = " << got[at] << ", want "
                        << want << " (tolerance " << tol << ")";
        }
      }
    }
  }
}

}  // namespace shallow::testing
