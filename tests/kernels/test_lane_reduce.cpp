// kernels/cpu/lane_reduce.h: the 16-lane float sum, sums in eight double lanes and the 16-lane
// max, at lengths around the lane counts, against plain loops; the max passes over NaNs as
// std::max does.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/lane_reduce.h"

namespace lr = shallow::cpu::lane_reduce;

TEST(LaneReduce, SumMatchesAPlainSumAtEveryLength) {
  for (int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 100, 1023}) {
    std::vector<float> v(static_cast<size_t>(n));
    double plain = 0;
    for (int64_t k = 0; k < n; ++k) {
      v[size_t(k)] = float(std::sin(double(k)) * 1e3 + 0.25 * double(k));
      plain += v[size_t(k)];
    }
    EXPECT_NEAR(lr::sum_f64(n, [&](int64_t k) { return v[size_t(k)]; }), plain,
                1e-12 * (1.0 + std::abs(plain)))
        << n;
    // Every term is taken once: a sum of ones counts them.
    EXPECT_EQ(lr::sum_f64(n, [](int64_t) { return 1.0f; }), double(n)) << n;
  }
}

TEST(LaneReduce, MaxAtEveryLengthPassesOverNaN) {
  const float lowest = -std::numeric_limits<float>::infinity();
  for (int64_t n : {0, 1, 15, 16, 17, 33, 100}) {
    for (int64_t at = 0; at < n; at += 7) {
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k) v[size_t(k)] = float(-k % 13);
      v[size_t(at)] = 5.0f;
      if (n > 1) v[size_t((at + 1) % n)] = NAN;
      EXPECT_EQ(lr::max(v.data(), n, lowest), 5.0f) << n << " " << at;
    }
  }
  EXPECT_EQ(lr::max<float>(nullptr, 0, lowest), lowest);
}

TEST(LaneReduce, FloatSumMatchesAPlainSum) {
  for (int64_t n : {0, 1, 15, 16, 17, 100, 1025}) {
    std::vector<float> v(static_cast<size_t>(n));
    double want = 0;
    for (int64_t i = 0; i < n; ++i) {
      v[size_t(i)] = float(std::sin(0.37 * double(i)) + 0.25);
      want += v[size_t(i)];
    }
    EXPECT_NEAR(lr::sum(v.data(), n), want, 1e-5 * (1 + double(n))) << n;
  }
}
