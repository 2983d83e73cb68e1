// The CUDA backend's plumbing: availability, copies between host and device, fill, the caching
// allocator's statistics and reuse, and its out-of-memory error.
#include "engine/optim.h"
#include "tests/gpu/gpu_test.h"

namespace shallow::testing {
namespace {

TEST(GpuAvailability, WithoutADeviceCudaTensorsAreAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_EQ(cuda_device_count(), 0);
  const std::string msg = error_of([] { Tensor::empty({2}, DType::f32, Device::cuda(0)); });
  EXPECT_NE(msg.find("cuda:0 is not available"), std::string::npos) << msg;
  const std::string moved = error_of([] { Tensor::ones({2}).to(Device::cuda(0)); });
  EXPECT_NE(moved.find("cuda:0 is not available"), std::string::npos) << moved;
}

TEST(GpuAvailability, DeviceIsNamed) {
  SKIP_WITHOUT_CUDA();
  EXPECT_GE(cuda_device_count(), 1);
  EXPECT_FALSE(cuda_device_name(0).empty());
  const std::string msg =
      error_of([] { Tensor::empty({2}, DType::f32, Device::cuda(cuda_device_count())); });
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

TEST(GpuCopy, RoundTripEveryDtype) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64,
                   DType::u8}) {
    SCOPED_TRACE(dtype_name(dt));
    // Tenths from 0 to 100: each dtype rounds them its own way, and the copy must not change that.
    Tensor x = Tensor::arange(1001, DType::i64).to(DType::f64).reshape({7, 11, 13});
    x = div(x, 10.0).to(dt);
    Tensor g = x.to(gpu());
    EXPECT_EQ(g.device(), gpu());
    EXPECT_EQ(g.dtype(), dt);
    EXPECT_EQ(g.shape(), x.shape());
    Tensor back = g.to(Device::cpu());
    EXPECT_EQ(back.device(), Device::cpu());
    EXPECT_TRUE(all_close(back, x, 0, 0));
  }
}

TEST(GpuCopy, NonContiguousBothWays) {
  SKIP_WITHOUT_CUDA();
  Tensor x = cpu_rand({6, 5, 4}, DType::f32, 1);
  // A transposed, sliced host view to the device...
  Tensor view = x.transpose(0, 2).slice(1, 1, 5, 2);
  EXPECT_FALSE(view.is_contiguous());
  EXPECT_TRUE(all_close(view.to(gpu()), view, 0, 0));
  // ...and a device view back to the host.
  Tensor g = x.to(gpu());
  Tensor gview = g.permute({2, 0, 1}).slice(2, 0, 5, 3);
  EXPECT_TRUE(all_close(gview.to(Device::cpu()), x.permute({2, 0, 1}).slice(2, 0, 5, 3), 0, 0));
  // contiguous() of a device view runs the strided copy kernel on the device.
  Tensor dense = gview.contiguous();
  EXPECT_TRUE(dense.is_contiguous());
  EXPECT_EQ(dense.device(), gpu());
  EXPECT_TRUE(all_close(dense, x.permute({2, 0, 1}).slice(2, 0, 5, 3), 0, 0));
}

TEST(GpuCopy, IntoViewsAndWithConversion) {
  SKIP_WITHOUT_CUDA();
  Tensor host = cpu_rand({4, 6}, DType::f64, 2);
  // Host f64 into a strided f32 device view: converted on the host, scattered on the device.
  Tensor g = Tensor::zeros({6, 4}, DType::f32, gpu());
  Tensor gt = g.t();
  gt.copy_(host);
  EXPECT_TRUE(all_close(g.t(), host.to(DType::f32), 0, 0));
  // Device f32 into a strided bf16 host view.
  Tensor h = Tensor::zeros({6, 4}, DType::bf16);
  Tensor ht = h.t();
  ht.copy_(gt);
  EXPECT_TRUE(all_close(h.t(), host.to(DType::f32).to(DType::bf16), 0, 0));
  // Device to device with conversion and broadcasting.
  Tensor row = Tensor::arange(4, DType::f32).to(gpu());
  Tensor dst = Tensor::empty({3, 4}, DType::f64, gpu());
  dst.copy_(row);
  EXPECT_TRUE(all_close(dst, Tensor::arange(4, DType::f64).expand({3, 4}), 0, 0));
}

TEST(GpuCopy, GradientFlowsBackToTheHost) {
  SKIP_WITHOUT_CUDA();
  Tensor x = cpu_rand({5, 3}, DType::f32, 3);
  x.set_requires_grad();
  Tensor y = sum(mul(x.to(gpu()), x.to(gpu())));
  EXPECT_EQ(y.device(), gpu());
  y.backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().device(), Device::cpu());
  EXPECT_TRUE(all_close(x.grad(), mul(x.detach(), 2.0), 1e-6, 1e-6));
}

TEST(GpuFill, FactoriesAndStridedFill) {
  SKIP_WITHOUT_CUDA();
  EXPECT_TRUE(all_close(Tensor::full({3, 5}, 2.5, DType::f32, gpu()), Tensor::full({3, 5}, 2.5), 0, 0));
  EXPECT_TRUE(all_close(Tensor::ones({7}, DType::bf16, gpu()), Tensor::ones({7}), 0, 0));
  EXPECT_TRUE(all_close(Tensor::zeros({2, 2}, DType::i64, gpu()), Tensor::zeros({2, 2}), 0, 0));
  Tensor g = Tensor::zeros({4, 6}, DType::f32, gpu());
  g.slice(1, 1, 6, 2).fill_(7.0);  // a strided view
  Tensor expected = Tensor::zeros({4, 6});
  expected.slice(1, 1, 6, 2).fill_(7.0);
  EXPECT_TRUE(all_close(g, expected, 0, 0));
  EXPECT_DOUBLE_EQ(sum(g).item(), 7.0 * 12);
}

TEST(GpuAllocator, BlocksAreReusedAndStatsFollow) {
  SKIP_WITHOUT_CUDA();
  cuda_synchronize();
  cuda_empty_cache();
  reset_peak_memory(gpu());
  const MemoryStats s0 = memory_stats(gpu());
  EXPECT_EQ(s0.peak_bytes, s0.current_bytes);
  void* first = nullptr;
  {
    Tensor a = Tensor::empty({1000}, DType::f32, gpu());
    first = a.raw_data();
    const MemoryStats s1 = memory_stats(gpu());
    EXPECT_EQ(s1.current_bytes, s0.current_bytes + 4000);
    EXPECT_GE(s1.reserved_bytes, s0.reserved_bytes + 4000);
    EXPECT_EQ(s1.allocations, s0.allocations + 1);
  }
  const MemoryStats s2 = memory_stats(gpu());
  EXPECT_EQ(s2.current_bytes, s0.current_bytes);
  EXPECT_GT(s2.reserved_bytes, s0.reserved_bytes) << "the freed block stays cached";
  {
    // 3900 bytes falls in the same 512-byte size class (4096) as 4000: the block comes back.
    Tensor b = Tensor::empty({975}, DType::f32, gpu());
    EXPECT_EQ(b.raw_data(), first);
    EXPECT_EQ(memory_stats(gpu()).reserved_bytes, s2.reserved_bytes) << "no new cudaMalloc";
  }
  {
    Tensor big1 = Tensor::empty({1 << 20}, DType::f32, gpu());  // 4 MiB
    Tensor big2 = Tensor::empty({1 << 19}, DType::f32, gpu());  // 2 MiB
    EXPECT_EQ(memory_stats(gpu()).peak_bytes, s0.current_bytes + (6 << 20));
  }
  EXPECT_EQ(memory_stats(gpu()).peak_bytes, s0.current_bytes + (6 << 20));
  EXPECT_EQ(memory_stats(gpu()).current_bytes, s0.current_bytes);
  reset_peak_memory(gpu());
  EXPECT_EQ(memory_stats(gpu()).peak_bytes, s0.current_bytes);
  cuda_empty_cache();
  EXPECT_EQ(memory_stats(gpu()).reserved_bytes, s0.reserved_bytes) << "cache given back";
}

TEST(GpuAllocator, OutOfMemoryNamesTheSizeAndWhatIsInUse) {
  SKIP_WITHOUT_CUDA();
  Tensor keep = Tensor::empty({1 << 20}, DType::u8, gpu());  // something in use
  const MemoryStats before = memory_stats(gpu());
  const int64_t petabyte = 1000000000000000;
  const std::string msg = error_of([&] { Tensor::empty({petabyte}, DType::u8, gpu()); });
  EXPECT_NE(msg.find("out of memory on cuda:0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1000000000000000 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("in use by tensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("free of"), std::string::npos) << msg;
  EXPECT_EQ(memory_stats(gpu()).current_bytes, before.current_bytes);
  // The device still works after the failed request.
  EXPECT_DOUBLE_EQ(sum(Tensor::ones({10}, DType::f32, gpu())).item(), 10.0);
}

TEST(GpuErrors, MixedDevicesAreRefusedByName) {
  SKIP_WITHOUT_CUDA();
  const std::string mixed = error_of([&] { add(Tensor::ones({2}), Tensor::ones({2}, DType::f32, gpu())); });
  EXPECT_NE(mixed.find("add: devices differ, cpu vs cuda:0"), std::string::npos) << mixed;
}

TEST(GpuCopy, SmallUploadsAreQueuedAndTheHostBufferIsFreeAtOnce) {
  SKIP_WITHOUT_CUDA();
  // More uploads than the ring has slots, each followed by a kernel that reads it, and the host
  // tensor overwritten as soon as the call returns.
  Tensor total = Tensor::zeros({1000}, DType::f32, gpu());
  double expected = 0;
  for (int i = 0; i < 40; ++i) {
    Tensor host = Tensor::full({1000}, double(i));
    const Tensor on_gpu = host.to(gpu());
    host.fill_(-1000.0);
    total = add(total, on_gpu);
    expected += i;
  }
  // one large upload between them goes the other way
  const Tensor big = cpu_rand({300000}, DType::f32, 5);
  EXPECT_TRUE(all_close(big.to(gpu()).to(Device::cpu()), big, 0, 0));
  EXPECT_TRUE(all_close(total.to(Device::cpu()), Tensor::full({1000}, expected), 0, 0));
}

TEST(GpuCopy, PermutedLayoutsByChunksAndByElements) {
  SKIP_WITHOUT_CUDA();
  // [B, H, T, D] -> [B, T, H, D] (attention's merge of heads): rows of D contiguous on both
  // sides go by 16-byte chunks; odd D and dtype changes by elements; size-1 dims and
  // mergeable dims are simplified away first.
  for (DType dt : {DType::bf16, DType::f32, DType::f64, DType::u8}) {
    for (int64_t d : {64, 8, 7}) {
      const Tensor x = cpu_rand({3, 4, 5, d}, DType::f32, uint64_t(d), 0, 100).to(dt);
      const Tensor expected = x.transpose(1, 2).contiguous();
      const Tensor got = x.to(gpu()).transpose(1, 2).contiguous();
      EXPECT_TRUE(all_close(got.to(Device::cpu()), expected, 0, 0)) << dtype_name(dt) << " d=" << d;
      // with a conversion on the way
      EXPECT_TRUE(all_close(x.to(gpu()).transpose(1, 2).to(DType::f64).to(Device::cpu()),
                            expected.to(DType::f64), 0, 0));
    }
  }
  const Tensor y = cpu_rand({2, 1, 3, 1, 5, 6}, DType::f32, 3);
  const Tensor perm = y.to(gpu()).permute({4, 1, 0, 5, 3, 2}).contiguous();
  EXPECT_TRUE(all_close(perm.to(Device::cpu()), y.permute({4, 1, 0, 5, 3, 2}).contiguous(), 0, 0));
  // a slice whose rows are contiguous but start off 16-byte alignment
  const Tensor z = cpu_rand({6, 40}, DType::bf16, 4);
  const Tensor cut = z.to(gpu()).slice(1, 1, 33).contiguous();
  EXPECT_TRUE(all_close(cut.to(Device::cpu()), z.slice(1, 1, 33).contiguous(), 0, 0));
}

}  // namespace
}  // namespace shallow::testing
