// The 2x2, stride-2 average pooling path (a ResNet's striding) against the general loop's
// arithmetic, bit for bit: the same sums in the same order, for widths on either side of a
// vector, odd sizes (the last row and column dropped), signed zeros, and at 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/pool.h"

using namespace shallow::cpu;

namespace {

// Sums from zero, row by row, left to right, then divides: the general loop of pool.cpp.
std::vector<float> reference(const Pool2dShape& s, const std::vector<float>& x) {
  std::vector<float> y(size_t(s.planes * s.H_out * s.W_out));
  for (int64_t p = 0; p < s.planes; ++p)
    for (int64_t oh = 0; oh < s.H_out; ++oh)
      for (int64_t ow = 0; ow < s.W_out; ++ow) {
        float acc = 0;
        for (int64_t h = 2 * oh; h < 2 * oh + 2; ++h)
          for (int64_t w = 2 * ow; w < 2 * ow + 2; ++w) acc += x[size_t((p * s.H + h) * s.W + w)];
        y[size_t((p * s.H_out + oh) * s.W_out + ow)] = acc / 4.0f;
      }
  return y;
}

TEST(PoolKernels, Average2x2MatchesTheGeneralLoopBitForBit) {
  const int before = num_threads();
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-3, 3);
  for (int threads : {1, 2})
    for (int64_t W : {2, 3, 31, 32, 33, 34, 65, 112})
      for (int64_t H : {2, 5}) {
        set_num_threads(threads);
        Pool2dShape s;
        s.planes = 3, s.H = H, s.W = W, s.H_out = H / 2, s.W_out = W / 2;
        s.kH = s.kW = s.stride_h = s.stride_w = 2;
        std::vector<float> x(size_t(s.planes * H * W));
        for (float& v : x) v = u(rng);
        x[0] = x[1] = x[size_t(W)] = x[size_t(W) + 1] = -0.0f;  // all four: +0 from the zero start
        std::vector<float> y(size_t(s.planes * s.H_out * s.W_out), std::nanf(""));
        avg_pool2d_forward<float>(s, true, x.data(), y.data());
        const auto want = reference(s, x);
        ASSERT_EQ(y.size(), want.size());
        EXPECT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * sizeof(float)))
            << "H " << H << " W " << W << " threads " << threads;
        EXPECT_FALSE(std::signbit(y[0]));
      }
  set_num_threads(before);
}

}  // namespace
