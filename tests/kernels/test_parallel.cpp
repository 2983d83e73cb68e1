#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
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

// Regions back to back (the workers still spinning from the last one), regions after a pause
// long enough for them to fall asleep, and two user threads starting regions at once; more
// threads than cores too. Every index is visited exactly once each time.
TEST(ParallelFor, BackToBackRegionsAfterPausesAndFromTwoCallers) {
  for (int threads : {2, 4}) {
    shallow::cpu::set_num_threads(threads);
    auto region = [](std::vector<std::atomic<int>>& hits) {
      parallel_for(0, int64_t(hits.size()), 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
    };
    std::vector<std::atomic<int>> hits(64);
    for (int r = 0; r < 2000; ++r) region(hits);
    for (int r = 0; r < 3; ++r) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      region(hits);
    }
    for (auto& h : hits) EXPECT_EQ(h.load(), 2003);

    std::vector<std::atomic<int>> a(50), b(70);
    std::thread other([&] { for (int r = 0; r < 300; ++r) region(b); });
    for (int r = 0; r < 300; ++r) region(a);
    other.join();
    for (auto& h : a) EXPECT_EQ(h.load(), 300);
    for (auto& h : b) EXPECT_EQ(h.load(), 300);
  }
  shallow::cpu::set_num_threads(0);
}
