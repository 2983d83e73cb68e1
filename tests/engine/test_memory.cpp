// The allocator's counters, and that inference under NoGrad keeps no activations alive.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "engine/allocator.h"
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

// Blocks of 1 MiB and more are rounded up to 2 MiB pages and, once freed, kept for the next
// request of the same rounded size (except under AddressSanitizer, which must see the free);
// release_cache gives them back. Small blocks count their 64-byte rounding as reserved.
TEST(Memory, LargeBlocksAreKeptForTheNextRequestOfTheirSize) {
  Allocator& cpu = allocator_for(Device::cpu());
  cpu.release_cache();
  const MemoryStats base = memory_stats();
  const size_t three_mib = size_t(3) << 20, four_mib = size_t(4) << 20;

  void* p = cpu.allocate(three_mib);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (size_t(2) << 20), 0u);
  std::memset(p, 0x5a, three_mib);  // all of it is ours to write
  EXPECT_EQ(memory_stats().current_bytes - base.current_bytes, int64_t(three_mib));
  EXPECT_EQ(memory_stats().reserved_bytes - base.reserved_bytes, int64_t(four_mib));
  cpu.deallocate(p, three_mib);
  EXPECT_EQ(memory_stats().current_bytes, base.current_bytes);
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_EQ(memory_stats().reserved_bytes, base.reserved_bytes);
#else
  EXPECT_EQ(memory_stats().reserved_bytes - base.reserved_bytes, int64_t(four_mib));
  void* q = cpu.allocate(three_mib + 12345);  // the same 4 MiB block
  EXPECT_EQ(q, p);
  void* r = cpu.allocate(three_mib);  // the kept block is taken: a new one
  EXPECT_NE(r, q);
  EXPECT_EQ(memory_stats().reserved_bytes - base.reserved_bytes, int64_t(2 * four_mib));
  cpu.deallocate(q, three_mib + 12345);
  cpu.deallocate(r, three_mib);
  EXPECT_EQ(memory_stats().reserved_bytes - base.reserved_bytes, int64_t(2 * four_mib));
  cpu.release_cache();
  EXPECT_EQ(memory_stats().reserved_bytes, base.reserved_bytes);
#endif

  void* small = cpu.allocate(1000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 64, 0u);
  EXPECT_EQ(memory_stats().reserved_bytes - base.reserved_bytes, 1024);
  cpu.deallocate(small, 1000);
  EXPECT_EQ(memory_stats().reserved_bytes, base.reserved_bytes);
}
