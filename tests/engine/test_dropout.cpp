// dropout and dropout2d: masks reproducible by seed and independent of the thread count, the
// right statistics and scaling, identity when off, gradients, and the errors they give.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/ops.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/philox.h"
#include "tests/support/gradcheck.h"
#include "tests/support/errors.h"

using namespace shallow;
using shallow::testing::error_of;
using shallow::testing::gradcheck;
using shallow::testing::rand_input;

namespace {

// Restores the thread count when a test ends, even on failure.
struct ThreadCount {
  explicit ThreadCount(int n) : saved(num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved); }
  int saved;
};

double fraction_zero(const Tensor& t) {
  int64_t zeros = 0;
  for (float v : t.to_vector<float>()) zeros += v == 0.f;
  return double(zeros) / double(t.numel());
}

}  // namespace

TEST(Dropout, SameSeedSameMask) {
  Tensor x = Tensor::ones({1000});
  Generator a(42), b(42), c(43);
  std::vector<float> ya = dropout(x, 0.5, true, &a).to_vector<float>();
  EXPECT_EQ(ya, dropout(x, 0.5, true, &b).to_vector<float>());
  EXPECT_NE(ya, dropout(x, 0.5, true, &c).to_vector<float>());
  // A second draw from the same generator gives a new mask; reseeding repeats the first.
  EXPECT_NE(ya, dropout(x, 0.5, true, &a).to_vector<float>());
  a.manual_seed(42);
  EXPECT_EQ(ya, dropout(x, 0.5, true, &a).to_vector<float>());
  // One Philox counter serves four elements.
  Generator g(1);
  dropout(Tensor::ones({10}), 0.5, true, &g);
  EXPECT_EQ(g.offset(), 3u);
  // The default generator follows manual_seed.
  manual_seed(5);
  std::vector<float> d1 = dropout(x, 0.3, true).to_vector<float>();
  manual_seed(5);
  EXPECT_EQ(d1, dropout(x, 0.3, true).to_vector<float>());
}

// The kernel's draws are philox's: unit u is kept when uniform01(philox(seed, offset + u / 4)
// .v[u % 4]) >= p, for every unit, in batches of 64 units (the vector path) and in the single
// groups around them (unit counts off a multiple of 64, counters crossing 2^32, units of several
// elements), in float and double, at several p; a dropped NaN stays NaN (x * 0).
template <class T>
void expect_philox_draws(double p) {
  const uint64_t seed = 0x1234'5678'9ABC'DEF0ull;
  const T scale = p >= 1.0 ? T(0) : T(1.0 / (1.0 - p));
  for (int64_t S : {1, 3}) {
    for (int64_t units : {1, 63, 64, 65, 1000, 4099}) {
      for (uint64_t offset : {uint64_t(0), (uint64_t(1) << 32) - 7}) {
        std::vector<T> x(size_t(units * S)), y(x.size(), T(-1));
        for (size_t i = 0; i < x.size(); ++i) x[i] = i % 7 == 6 ? T(NAN) : T(1) + T(i % 5);
        cpu::dropout<T>(units, S, x.data(), y.data(), p, seed, offset);
        for (int64_t u = 0; u < units; ++u) {
          const cpu::Philox4 r = cpu::philox(seed, offset + uint64_t(u / 4));
          const bool keep = !(cpu::uniform01(r.v[u % 4]) < float(p));
          for (int64_t j = 0; j < S; ++j) {
            const size_t i = size_t(u * S + j);
            const T want = x[i] * (keep ? scale : T(0));
            if (std::isnan(want)) {
              ASSERT_TRUE(std::isnan(y[i])) << "unit " << u << " of " << units;
            } else {
              ASSERT_EQ(y[i], want) << "unit " << u << " of " << units << ", S " << S
                                    << ", offset " << offset << ", p " << p;
            }
          }
        }
      }
    }
  }
}

TEST(Dropout, KernelDrawsArePhiloxs) {
  for (double p : {0.3, 0.1, 0.5, 0.999, 1.0}) {
    expect_philox_draws<float>(p);
    expect_philox_draws<double>(p);
  }
}

TEST(Dropout, MaskDoesNotDependOnThreadCount) {
  Generator g1(7), g2(7);
  Tensor x = Tensor::ones({257, 301});  // odd size: chunks end mid-group of four
  std::vector<float> one, two;
  {
    ThreadCount tc(1);
    one = dropout(x, 0.4, true, &g1).to_vector<float>();
  }
  {
    ThreadCount tc(2);
    two = dropout(x, 0.4, true, &g2).to_vector<float>();
  }
  EXPECT_EQ(one, two);
  Tensor c = Tensor::ones({64, 48, 9});
  {
    ThreadCount tc(1);
    one = dropout2d(c, 0.4, true, &g1).to_vector<float>();
  }
  {
    ThreadCount tc(2);
    two = dropout2d(c, 0.4, true, &g2).to_vector<float>();
  }
  EXPECT_EQ(one, two);
}

TEST(Dropout, StatisticsAndScale) {
  Tensor x = Tensor::ones({200000});
  for (double p : {0.1, 0.5, 0.8}) {
    Generator g(11);
    Tensor y = dropout(x, p, true, &g);
    // The fraction's standard deviation is below 0.0012 here.
    EXPECT_NEAR(fraction_zero(y), p, 0.01) << "p " << p;
    const float scale = float(1.0 / (1.0 - p));
    for (float v : y.to_vector<float>()) ASSERT_TRUE(v == 0.f || v == scale) << v;
    EXPECT_NEAR(mean(y).item(), 1.0, 0.03) << "p " << p;  // unbiased in expectation
  }
}

TEST(Dropout, IdentityWhenOffAndZerosAtOne) {
  Generator g(3);
  Tensor x = rand_input({5, 7}, 1).detach();
  EXPECT_EQ(dropout(x, 0.5, false, &g).to_vector<double>(), x.to_vector<double>());
  EXPECT_EQ(dropout(x, 0.0, true, &g).to_vector<double>(), x.to_vector<double>());
  EXPECT_EQ(dropout2d(x.reshape({5, 7, 1}), 0.7, false, &g).to_vector<double>(),
            x.to_vector<double>());
  EXPECT_EQ(g.offset(), 0u);  // nothing drawn
  for (double v : dropout(x, 1.0, true, &g).to_vector<double>()) EXPECT_EQ(v, 0.0);
  for (double v : dropout2d(x.reshape({5, 7, 1}), 1.0, true, &g).to_vector<double>())
    EXPECT_EQ(v, 0.0);
}

TEST(Dropout, NonContiguousAndHalfInputs) {
  Tensor x = Tensor::arange(60, DType::f32).reshape({6, 10}) + 1.0;
  Generator a(9), b(9);
  EXPECT_EQ(dropout(x.t(), 0.5, true, &a).to_vector<float>(),
            dropout(x.t().contiguous(), 0.5, true, &b).to_vector<float>());
  Generator h1(9), h2(9);
  Tensor yh = dropout(x.to(DType::bf16), 0.5, true, &h1);
  EXPECT_EQ(yh.dtype(), DType::bf16);
  EXPECT_EQ(yh.to(DType::f32).to_vector<float>(), dropout(x, 0.5, true, &h2).to_vector<float>());
}

TEST(Dropout, GradientIsTheSameMask) {
  Generator g(21);
  Tensor x = rand_input({40, 30}, 2);
  Tensor y = dropout(x, 0.3, true, &g);
  Tensor w = rand_input({40, 30}, 3).detach();
  sum(mul(y, w)).backward();
  std::vector<double> yv = y.to_vector<double>(), xv = x.to_vector<double>(),
                      wv = w.to_vector<double>(), gv = x.grad().to_vector<double>();
  for (size_t i = 0; i < yv.size(); ++i) {
    const double factor = yv[i] / xv[i];  // 0 or 1/(1-p)
    ASSERT_NEAR(gv[i], wv[i] * factor, 1e-12) << i;
  }
  // Finite differences with a fixed mask per call (a fresh generator of the same seed).
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator gen(5);
        return dropout(in[0], 0.4, true, &gen);
      },
      {rand_input({3, 5}, 4)}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator gen(6);
        return dropout2d(in[0].transpose(2, 3), 0.5, true, &gen);
      },
      {rand_input({2, 4, 3, 2}, 5)}));
}

TEST(Dropout2d, ZeroesWholeChannels) {
  Generator g(13);
  const double p = 0.5;
  Tensor y = dropout2d(Tensor::ones({32, 64, 3, 5}), p, true, &g);
  std::vector<float> v = y.to_vector<float>();
  int64_t dropped = 0;
  for (int64_t ch = 0; ch < 32 * 64; ++ch) {
    const float first = v[size_t(ch * 15)];
    ASSERT_TRUE(first == 0.f || first == 2.f) << first;
    for (int64_t j = 1; j < 15; ++j) ASSERT_EQ(v[size_t(ch * 15 + j)], first) << "channel " << ch;
    dropped += first == 0.f;
  }
  EXPECT_NEAR(double(dropped) / (32 * 64), p, 0.05);
  // [N, C, L] works the same way.
  Tensor y3 = dropout2d(Tensor::ones({8, 16, 7}), 0.5, true, &g);
  std::vector<float> v3 = y3.to_vector<float>();
  for (int64_t ch = 0; ch < 8 * 16; ++ch)
    for (int64_t j = 1; j < 7; ++j) ASSERT_EQ(v3[size_t(ch * 7 + j)], v3[size_t(ch * 7)]);
}

TEST(Dropout, BadInput) {
  Tensor x = Tensor::ones({4, 3});
  EXPECT_ERROR_HAS(dropout(x, 1.5, true), "dropout: p must be in [0, 1], got 1.5");
  EXPECT_ERROR_HAS(dropout(x, -0.1, false), "dropout: p must be in [0, 1], got -0.1");
  EXPECT_ERROR_HAS(dropout2d(x, 2.0, true), "dropout2d: p must be in [0, 1], got 2");
  EXPECT_ERROR_HAS(dropout2d(Tensor::ones({4}), 0.5, true),
                   "dropout2d: expected an input of shape [N, C, ...], got [4]");
  EXPECT_ERROR_HAS(dropout(Tensor::ones({4}, DType::i64), 0.5, true),
                   "dropout: expected a floating-point");
}
