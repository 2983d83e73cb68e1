// The allocator's counters, and that inference under NoGrad keeps no activations alive.
#include <gtest/gtest.h>

#include "engine/ops.h"

using namespace shallow;

TEST(Memory, CountsCurrentAndPeak) {
  const int64_t base = memory_stats().current_bytes;
  reset_peak_memory();
  {
    Tensor a = Tensor::empty({1000}, DType::f32);
    EXPECT_EQ(memory_stats().current_bytes, base + 4000);
    Tensor b = Tensor::empty({500}, DType::f64);
    EXPECT_EQ(memory_stats().current_bytes, base + 8000);
  }
  EXPECT_EQ(memory_stats().current_bytes, base);
  EXPECT_EQ(memory_stats().peak_bytes, base + 8000);
  reset_peak_memory();
  EXPECT_EQ(memory_stats().peak_bytes, base);
}

TEST(Memory, ViewsShareStorage) {
  const int64_t base = memory_stats().current_bytes;
  Tensor a = Tensor::zeros({64, 64});
  Tensor v = a.t().slice(0, 1, 10).unsqueeze(0);
  EXPECT_EQ(memory_stats().current_bytes, base + 64 * 64 * 4);
  EXPECT_EQ(v.storage(), a.storage());
}

// A chain of 20 ops on a 1 MB activation: under NoGrad each intermediate dies when the next
// exists, so the peak stays at a few activations; with a graph all of them are kept.
TEST(Memory, InferenceUnderNoGradFreesActivations) {
  const int64_t bytes = 256 * 1024 * 4;
  Tensor w = Tensor::ones({256, 1024});
  w.set_requires_grad(true);
  auto chain = [&](const Tensor& x0) {
    Tensor x = x0;
    for (int i = 0; i < 20; ++i) x = tanh(mul(x, w));
    return x;
  };
  const int64_t base = memory_stats().current_bytes;
  reset_peak_memory();
  {
    NoGrad ng;
    Tensor y = chain(Tensor::full({256, 1024}, 0.1));
  }
  const int64_t inference_peak = memory_stats().peak_bytes - base;
  EXPECT_LE(inference_peak, 4 * bytes);

  reset_peak_memory();
  {
    Tensor y = chain(Tensor::full({256, 1024}, 0.1));
    EXPECT_GE(memory_stats().current_bytes - base, 20 * bytes);  // the graph holds them
  }
  EXPECT_EQ(memory_stats().current_bytes, base);  // and frees them with the graph
}
