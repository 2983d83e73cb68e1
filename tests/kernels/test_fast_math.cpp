// kernels/cpu/fast_math.h against the double library functions: e^x over the whole float
// range (subnormal results, 0, inf, NaN), the activations and their derivatives.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/fast_math.h"

namespace fm = shallow::cpu::fast_math;

namespace {

// Distance in units in the last place of the float nearest to `want` (subnormals count their
// own spacing; both infinite or both NaN count as 0).
double ulps(float got, double want) {
  if (std::isnan(want)) return std::isnan(got) ? 0 : 1e30;
  if (std::isinf(want)) return got == float(want) ? 0 : 1e30;
  const float nearest = float(want);
  const float next = std::nextafter(std::fabs(nearest), std::numeric_limits<float>::infinity());
  const double spacing = double(next) - double(std::fabs(nearest));
  return std::fabs(double(got) - want) / spacing;
}

}  // namespace

TEST(FastMath, ExpWithinTwoUlpsOverTheWholeRange) {
  double worst = 0;
  for (double x = -110.0; x <= 89.0; x += 0.0137) {
    const float xf = float(x);
    worst = std::max(worst, ulps(fm::exp(xf), std::exp(double(xf))));
  }
  EXPECT_LE(worst, 2.0);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fm::exp(-inf), 0.0f);
  EXPECT_EQ(fm::exp(-200.0f), 0.0f);
  EXPECT_GT(fm::exp(-100.0f), 0.0f);  // a subnormal, not flushed
  EXPECT_EQ(fm::exp(inf), inf);
  EXPECT_EQ(fm::exp(89.0f), inf);
  EXPECT_LE(ulps(fm::exp(88.7f), std::exp(double(88.7f))), 2.0);  // the top of the range
  EXPECT_TRUE(std::isnan(fm::exp(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(fm::exp(0.0f), 1.0f);
}

TEST(FastMath, ActivationsAndTheirDerivativesAgreeWithDouble) {
  const double s2 = std::sqrt(2.0), k = std::sqrt(2.0 / M_PI);
  auto phi = [&](double x) { return 0.5 * std::erfc(-x / s2); };
  auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  for (double x = -30.0; x <= 30.0; x += 0.0093) {
    const float xf = float(x);
    const double v = double(xf);
    const double u = k * (v + 0.044715 * v * v * v);
    const double du = k * (1 + 3 * 0.044715 * v * v);
    const struct {
      const char* name;
      float got;
      double want;
    } cases[] = {
        {"sigmoid", fm::sigmoid(xf), sig(v)},
        {"gelu", fm::gelu_erf(xf), v * phi(v)},
        {"gelu'", fm::gelu_erf_grad(xf), phi(v) + v * std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI)},
        {"gelu_tanh", fm::gelu_tanh(xf), v * sig(2 * u)},
        {"gelu_tanh'", fm::gelu_tanh_grad(xf), sig(2 * u) + 2 * v * sig(2 * u) * (1 - sig(2 * u)) * du},
        {"quick_gelu", fm::quick_gelu(xf), v * sig(1.702 * v)},
        {"quick_gelu'", fm::quick_gelu_grad(xf), sig(1.702 * v) + 1.702 * v * sig(1.702 * v) * (1 - sig(1.702 * v))},
    };
    for (const auto& c : cases) {
      // Relative, with an absolute floor where the value passes through zero.
      const double tol = 1e-6 * std::fabs(c.want) + 1e-7;
      ASSERT_NEAR(c.got, c.want, tol) << c.name << " at " << v;
    }
  }
}
