#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/parallel.h"

using shallow::cpu::parallel_for;

TEST(ParallelFor, CoversTheRangeExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    shallow::cpu::set_num_threads(threads);
    EXPECT_EQ(shallow::cpu::num_threads(), threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  }
  shallow::cpu::set_num_threads(0);
}

TEST(ParallelFor, NestedCallsRunInline) {
  shallow::cpu::set_num_threads(2);
  std::atomic<int64_t> total{0};
  parallel_for(0, 4, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      parallel_for(0, 100, 1, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
  });
  EXPECT_EQ(total.load(), 400);
  shallow::cpu::set_num_threads(0);
}

TEST(ParallelFor, ExceptionsReachTheCaller) {
  shallow::cpu::set_num_threads(2);
  EXPECT_THROW(parallel_for(0, 100, 1,
                            [](int64_t b, int64_t) {
                              if (b > 0) throw std::runtime_error("worker failed");
                            }),
               std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int64_t> n{0};
  parallel_for(0, 10, 1, [&](int64_t b, int64_t e) { n += e - b; });
  EXPECT_EQ(n.load(), 10);
  shallow::cpu::set_num_threads(0);
}
