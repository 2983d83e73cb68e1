// Convolution, pooling and batch norm on CUDA against the same ops on the CPU (the reference,
// checked against PyTorch in tests/engine), forward and every gradient. Each convolution case
// runs through both implementations: the implicit-GEMM kernels and cuDNN (where the build has
// it). Shapes: the EEG encoders' temporal (1, 25), spatial (C, 1), 1x1 and depthwise (EEGNet)
// convolutions at a small batch, the ResNet's 3x3 with stride 2, and odd sizes that leave
// partial tiles on every edge of the 64x64x16 tiles.
#include <cmath>
#include <limits>

#include "engine/cuda/conv_ops.h"
#include "tests/gpu/gpu_test.h"

namespace shallow::testing {
namespace {

const DType kFloatTypes[] = {DType::f32, DType::f64};

// Convolutions sum hundreds to tens of thousands of products in another order than the CPU:
// float needs a looser bound than the elementwise ops.
Tol conv_tol(DType dt) {
  if (dt == DType::f32) return {5e-4, 5e-4};
  if (dt == DType::f64) return {1e-10, 1e-9};
  return tol_for(dt);
}

std::vector<CudaConv> conv_paths() {
  std::vector<CudaConv> paths = {CudaConv::implicit_gemm};
  if (cuda_conv_has_cudnn()) paths.push_back(CudaConv::cudnn);
  return paths;
}

// Restores the process's convolution setting when a test ends.
struct ConvSettingGuard {
  CudaConv saved = cuda_conv();
  ~ConvSettingGuard() { set_cuda_conv(saved); }
};

struct ConvCase {
  const char* name;
  Shape x, w;
  bool bias;
  Int2 stride, padding, dilation;
  int64_t groups;
};

std::vector<ConvCase> conv_cases() {
  return {
      // EEG encoders (ShallowNet / DeepNet / TSConv): temporal, then spatial over electrodes.
      {"eeg temporal (1,25)", {3, 1, 5, 40}, {4, 1, 1, 25}, true, {1, 1}, {0, 0}, {1, 1}, 1},
      {"eeg spatial (C,1)", {3, 4, 5, 16}, {6, 4, 5, 1}, true, {1, 1}, {0, 0}, {1, 1}, 1},
      {"1x1", {2, 6, 3, 7}, {5, 6, 1, 1}, true, {1, 1}, {0, 0}, {1, 1}, 1},
      // EEGNet: depthwise spatial (groups = channels, depth multiplier 2), then separable.
      {"depthwise (C,1) x2", {2, 4, 17, 9}, {8, 1, 17, 1}, false, {1, 1}, {0, 0}, {1, 1}, 4},
      {"depthwise 3x3 stride 2 pad dil", {2, 3, 9, 10}, {3, 1, 3, 3}, true, {2, 2}, {1, 2}, {2, 1}, 3},
      {"eegnet temporal same-pad (1,16)", {2, 1, 3, 30}, {5, 1, 1, 16}, false, {1, 1}, {0, 8}, {1, 1}, 1},
      // ResNet: 3x3 pad 1, stride 2, and a stem-like 7x7 stride 2 pad 3.
      {"3x3 stride 2 pad 1", {2, 5, 9, 11}, {7, 5, 3, 3}, true, {2, 2}, {1, 1}, {1, 1}, 1},
      {"7x7 stride 2 pad 3", {1, 3, 13, 12}, {4, 3, 7, 7}, false, {2, 2}, {3, 3}, {1, 1}, 1},
      // Dilation with padding, different along H and W.
      {"dilated", {2, 3, 10, 9}, {4, 3, 3, 2}, true, {1, 1}, {2, 1}, {2, 3}, 1},
      // Grouped, not depthwise.
      {"groups 2", {2, 6, 7, 8}, {4, 3, 3, 3}, true, {1, 1}, {1, 1}, {1, 1}, 2},
      {"groups 3 with 2 inputs each", {1, 6, 5, 6}, {9, 2, 2, 3}, true, {1, 2}, {0, 1}, {1, 1}, 3},
      // Stride larger than the kernel: input pixels no window reads get zero gradient.
      {"stride 3 kernel 2", {1, 2, 11, 10}, {3, 2, 2, 2}, true, {3, 3}, {0, 0}, {1, 1}, 1},
      // Partial tiles: 70 output channels (64 + 6), depth 9*9 = 81 (5 slices of 16, one
      // partial), 2*12*13 = 312 output pixels (4 full row tiles + 56).
      {"tile edges", {2, 9, 12, 13}, {70, 9, 3, 3}, true, {1, 1}, {1, 1}, {1, 1}, 1},
      // Many images and pixels: the weight gradient's reduction is split across blocks.
      {"long reduction", {8, 1, 17, 250}, {40, 1, 1, 25}, true, {1, 1}, {0, 0}, {1, 1}, 1},
  };
}

Tensor run_conv(const ConvCase& c, const std::vector<Tensor>& v) {
  return conv2d(v[0], v[1], c.bias ? v[2] : Tensor(), c.stride, c.padding, c.dilation, c.groups);
}

std::vector<Tensor> conv_inputs(const ConvCase& c, DType dt, uint64_t seed) {
  std::vector<Tensor> in;
  in.push_back(cpu_rand(c.x, dt, seed));
  in.push_back(cpu_rand(c.w, dt, seed + 1));
  if (c.bias) in.push_back(cpu_rand({c.w[0]}, dt, seed + 2));
  return in;
}

TEST(GpuConv, SettingNamesAndFallsBackWithoutCudnn) {
  ConvSettingGuard guard;
  EXPECT_STREQ(cuda_conv_name(CudaConv::implicit_gemm), "implicit_gemm");
  EXPECT_STREQ(cuda_conv_name(CudaConv::cudnn), "cudnn");
  set_cuda_conv(CudaConv::implicit_gemm);
  EXPECT_EQ(cuda_conv(), CudaConv::implicit_gemm);
  set_cuda_conv(CudaConv::cudnn);
  EXPECT_EQ(cuda_conv(), cuda_conv_has_cudnn() ? CudaConv::cudnn : CudaConv::implicit_gemm);
}

TEST(GpuConv, EveryCaseForwardAndGradientsBothPaths) {
  SKIP_WITHOUT_CUDA();
  ConvSettingGuard guard;
  for (CudaConv path : conv_paths()) {
    set_cuda_conv(path);
    for (const ConvCase& c : conv_cases()) {
      for (DType dt : kFloatTypes) {
        auto f = [&](const std::vector<Tensor>& v) { return run_conv(c, v); };
        expect_gpu_matches_cpu(f, conv_inputs(c, dt, 20), conv_tol(dt), true,
                               std::string(c.name) + " " + dtype_name(dt) + " " +
                                   cuda_conv_name(path));
      }
    }
  }
}

TEST(GpuConv, Bf16CasesBothPaths) {
  SKIP_WITHOUT_CUDA();
  ConvSettingGuard guard;
  // Dense, depthwise, grouped, tile edges and the split weight-gradient reduction: the CPU
  // computes in f32 and rounds to bf16; the kernels load bf16 and sum in f32.
  const std::vector<ConvCase> all = conv_cases();
  const ConvCase picked[] = {all[0], all[3], all[4], all[9], all[12], all[13]};
  for (CudaConv path : conv_paths()) {
    set_cuda_conv(path);
    for (const ConvCase& c : picked) {
      auto f = [&](const std::vector<Tensor>& v) { return run_conv(c, v); };
      expect_gpu_matches_cpu(f, conv_inputs(c, DType::bf16, 25), tol_for(DType::bf16), true,
                             std::string(c.name) + " bf16 " + cuda_conv_name(path));
    }
  }
}

TEST(GpuConv, SecondCallWithTheSameShapeReusesTheAlgorithm) {
  SKIP_WITHOUT_CUDA();
  ConvSettingGuard guard;
  for (CudaConv path : conv_paths()) {
    set_cuda_conv(path);
    const ConvCase c = conv_cases()[6];
    // Same shape twice (cuDNN's cached algorithm the second time), new values each time.
    for (uint64_t seed : {30, 40}) {
      auto f = [&](const std::vector<Tensor>& v) { return run_conv(c, v); };
      expect_gpu_matches_cpu(f, conv_inputs(c, DType::f32, seed), conv_tol(DType::f32), true,
                             std::string("repeat ") + cuda_conv_name(path));
    }
  }
}

TEST(GpuConv, NonContiguousOffsetAndHalfInputs) {
  SKIP_WITHOUT_CUDA();
  ConvSettingGuard guard;
  for (CudaConv path : conv_paths()) {
    set_cuda_conv(path);
    const std::string p = cuda_conv_name(path);
    // Input stored as [N, C, W, H] and transposed; weight sliced out of a larger one.
    Tensor xt = cpu_rand({2, 3, 11, 9}, DType::f32, 50);
    Tensor wbig = cpu_rand({6, 3, 3, 4}, DType::f32, 51);
    Tensor b = cpu_rand({3}, DType::f32, 52);
    auto f = [](const std::vector<Tensor>& v) {
      return conv2d(v[0].transpose(2, 3), v[1].slice(0, 1, 6, 2).slice(3, 1, 4), v[2], {2, 1},
                    {1, 0}, {1, 1}, 1);
    };
    expect_gpu_matches_cpu(f, {xt, wbig, b}, conv_tol(DType::f32), true, "transposed " + p);
    // A view that starts one element into its storage.
    Tensor flat = cpu_rand({1 + 2 * 2 * 6 * 7}, DType::f32, 53);
    Tensor w = cpu_rand({3, 2, 2, 2}, DType::f32, 54);
    auto fo = [](const std::vector<Tensor>& v) {
      return conv2d(v[0].slice(0, 1, 1 + 2 * 2 * 6 * 7).reshape({2, 2, 6, 7}), v[1]);
    };
    expect_gpu_matches_cpu(fo, {flat, w}, conv_tol(DType::f32), true, "offset " + p);
    // bf16 is computed in f32 and rounded back, as on the CPU.
    const ConvCase c = conv_cases()[1];
    auto fh = [&](const std::vector<Tensor>& v) { return run_conv(c, v); };
    expect_gpu_matches_cpu(fh, conv_inputs(c, DType::bf16, 55), tol_for(DType::bf16), true,
                           "bf16 " + p);
  }
}

TEST(GpuConv, Conv1d) {
  SKIP_WITHOUT_CUDA();
  ConvSettingGuard guard;
  for (CudaConv path : conv_paths()) {
    set_cuda_conv(path);
    Tensor x = cpu_rand({3, 4, 37}, DType::f32, 60), w = cpu_rand({6, 2, 5}, DType::f32, 61);
    Tensor b = cpu_rand({6}, DType::f32, 62);
    auto f = [](const std::vector<Tensor>& v) { return conv1d(v[0], v[1], v[2], 2, 3, 2, 2); };
    expect_gpu_matches_cpu(f, {x, w, b}, conv_tol(DType::f32), true,
                           std::string("conv1d ") + cuda_conv_name(path));
  }
}

TEST(GpuConv, OnlyTheInputsThatNeedAGradientGetOne) {
  SKIP_WITHOUT_CUDA();
  ConvSettingGuard guard;
  for (CudaConv path : conv_paths()) {
    set_cuda_conv(path);
    Tensor x = cpu_rand({2, 3, 6, 7}, DType::f32, 70).to(gpu());
    Tensor w = cpu_rand({4, 3, 3, 3}, DType::f32, 71).to(gpu());
    w.set_requires_grad();
    sum(conv2d(x, w)).backward();
    EXPECT_FALSE(x.grad().defined());
    ASSERT_TRUE(w.grad().defined());
    Tensor w_cpu = w.detach().to(Device::cpu());
    w_cpu.set_requires_grad();
    sum(conv2d(x.to(Device::cpu()), w_cpu)).backward();
    EXPECT_TRUE(all_close(w.grad(), w_cpu.grad(), 5e-4, 5e-4));
  }
}

TEST(GpuConv, MixedDevicesAreRefusedByName) {
  SKIP_WITHOUT_CUDA();
  Tensor x = Tensor::ones({1, 2, 5, 5}, DType::f32, gpu());
  Tensor w = Tensor::ones({3, 2, 3, 3}, DType::f32, gpu());
  const std::string msg = error_of([&] { conv2d(x, w, Tensor::ones({3})); });
  EXPECT_NE(msg.find("conv2d"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cpu"), std::string::npos) << msg;
  const std::string msg2 = error_of([&] { conv2d(x, w.to(Device::cpu())); });
  EXPECT_NE(msg2.find("conv2d"), std::string::npos) << msg2;
}

// A ShallowNet-like stack, as the EEG encoders chain these ops: temporal conv, spatial conv,
// batch norm (training), ELU, average pooling over time, a 1x1 projection; every parameter's
// gradient is compared.
TEST(GpuConv, EegEncoderStackBothPaths) {
  SKIP_WITHOUT_CUDA();
  ConvSettingGuard guard;
  for (CudaConv path : conv_paths()) {
    set_cuda_conv(path);
    auto f = [](const std::vector<Tensor>& v) {
      Tensor h = conv2d(v[0], v[1], v[2]);                       // [N, 6, 5, 36]
      h = conv2d(h, v[3]);                                        // [N, 6, 1, 36]
      h = batch_norm(h, Tensor(), Tensor(), v[4], v[5], true, 0.1, 1e-5);
      h = elu(h);
      h = avg_pool2d(h, {1, 10}, {1, 3});                         // [N, 6, 1, 9]
      return conv2d(h, v[6], v[7]);                               // [N, 4, 1, 9]
    };
    const std::vector<Tensor> in = {
        cpu_rand({3, 1, 5, 60}, DType::f32, 110), cpu_rand({6, 1, 1, 25}, DType::f32, 111, -0.5, 0.5),
        cpu_rand({6}, DType::f32, 112),           cpu_rand({6, 6, 5, 1}, DType::f32, 113, -0.5, 0.5),
        cpu_rand({6}, DType::f32, 114, 0.5, 1.5), cpu_rand({6}, DType::f32, 115),
        cpu_rand({4, 6, 1, 1}, DType::f32, 116),  cpu_rand({4}, DType::f32, 117)};
    expect_gpu_matches_cpu(f, in, conv_tol(DType::f32), true,
                           std::string("eeg stack ") + cuda_conv_name(path));
  }
}

// ---- pooling

// Small whole numbers: windows often hold ties, which max pooling must break as the CPU does.
Tensor whole_numbers(const Shape& shape, DType dt, uint64_t seed) {
  std::vector<double> v = cpu_rand(shape, DType::f64, seed, -3, 3).to_vector<double>();
  for (double& e : v) e = std::floor(e);
  return Tensor::from_vector<double>(v, shape).to(dt);
}

TEST(GpuPool, AvgPoolCases) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    const char* name;
    Shape x;
    Int2 kernel, stride, padding;
    bool ceil_mode, count_include_pad;
  };
  const Case cases[] = {
      {"eeg (1,75) stride (1,15)", {3, 5, 1, 226}, {1, 75}, {1, 15}, {0, 0}, false, true},
      {"3x3 s2 p1", {2, 3, 9, 10}, {3, 3}, {2, 2}, {1, 1}, false, true},
      {"3x3 s2 p1 exclude pad", {2, 3, 9, 10}, {3, 3}, {2, 2}, {1, 1}, false, false},
      {"ceil mode", {2, 2, 8, 11}, {3, 2}, {2, 3}, {1, 1}, true, true},
      {"ceil mode exclude pad", {1, 2, 7, 7}, {2, 3}, {2, 2}, {1, 1}, true, false},
      {"default stride, 3-D input", {4, 6, 9}, {2, 3}, {0, 0}, {0, 0}, false, true},
  };
  for (const Case& c : cases)
    for (DType dt : kFloatTypes) {
      auto f = [&](const std::vector<Tensor>& v) {
        return avg_pool2d(v[0], c.kernel, c.stride, c.padding, c.ceil_mode, c.count_include_pad);
      };
      expect_gpu_matches_cpu(f, {cpu_rand(c.x, dt, 80)}, tol_for(dt), true,
                             std::string(c.name) + " " + dtype_name(dt));
    }
}

TEST(GpuPool, MaxPoolCasesWithTies) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    const char* name;
    Shape x;
    Int2 kernel, stride, padding, dilation;
    bool ceil_mode;
  };
  const Case cases[] = {
      {"resnet 3x3 s2 p1", {2, 3, 11, 12}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false},
      {"dilated", {2, 2, 12, 11}, {3, 2}, {1, 2}, {1, 1}, {2, 3}, false},
      {"ceil mode", {1, 3, 9, 8}, {3, 3}, {2, 2}, {0, 1}, {1, 1}, true},
      {"overlapping stride 1", {2, 2, 6, 7}, {2, 2}, {1, 1}, {0, 0}, {1, 1}, false},
      {"3-D input", {3, 7, 5}, {2, 2}, {0, 0}, {0, 0}, {1, 1}, false},
  };
  for (const Case& c : cases)
    for (DType dt : kFloatTypes) {
      auto f = [&](const std::vector<Tensor>& v) {
        return max_pool2d(v[0], c.kernel, c.stride, c.padding, c.dilation, c.ceil_mode);
      };
      // Exact: a max picks a value, and the gradient goes to the same element.
      expect_gpu_matches_cpu(f, {whole_numbers(c.x, dt, 81)}, {0, 0}, true,
                             std::string(c.name) + " " + dtype_name(dt));
    }
}

TEST(GpuPool, AdaptiveAvgPoolShrinkAndGrow) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    Shape x;
    Int2 out;
  };
  const Case cases[] = {{{2, 3, 7, 5}, {3, 4}}, {{2, 2, 3, 2}, {5, 7}}, {{1, 4, 7, 7}, {1, 1}},
                        {{3, 9, 10}, {4, 3}}};
  for (const Case& c : cases)
    for (DType dt : kFloatTypes) {
      auto f = [&](const std::vector<Tensor>& v) { return adaptive_avg_pool2d(v[0], c.out); };
      expect_gpu_matches_cpu(f, {cpu_rand(c.x, dt, 82)}, tol_for(dt), true,
                             shape_str(c.x) + " -> (" + std::to_string(c.out[0]) + ", " +
                                 std::to_string(c.out[1]) + ") " + dtype_name(dt));
    }
}

TEST(GpuPool, NonContiguousAndHalfInputs) {
  SKIP_WITHOUT_CUDA();
  Tensor x = cpu_rand({2, 3, 10, 9}, DType::f32, 83);
  auto f = [](const std::vector<Tensor>& v) {
    return avg_pool2d(v[0].transpose(2, 3), {2, 3}, {2, 2}, {1, 1});
  };
  expect_gpu_matches_cpu(f, {x}, tol_for(DType::f32), true, "avg transposed");
  auto fm = [](const std::vector<Tensor>& v) {
    return max_pool2d(v[0].slice(3, 1, 9), {3, 3}, {2, 2}, {1, 1});
  };
  expect_gpu_matches_cpu(fm, {whole_numbers({2, 3, 10, 9}, DType::f32, 84)}, {0, 0}, true,
                         "max sliced");
  auto fa = [](const std::vector<Tensor>& v) { return adaptive_avg_pool2d(v[0], {2, 3}); };
  expect_gpu_matches_cpu(fa, {cpu_rand({2, 3, 5, 7}, DType::bf16, 85)}, tol_for(DType::bf16),
                         true, "adaptive bf16");
}

TEST(GpuPool, NanWinsTheMaxAsOnTheCpu) {
  SKIP_WITHOUT_CUDA();
  std::vector<float> v = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  v[4] = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>(v, {1, 1, 3, 3});
  Tensor cpu_y = max_pool2d(x, {2, 2}, {1, 1});
  Tensor gpu_y = max_pool2d(x.to(gpu()), {2, 2}, {1, 1}).to(Device::cpu());
  for (float e : gpu_y.to_vector<float>()) EXPECT_TRUE(std::isnan(e));
  EXPECT_EQ(cpu_y.to_vector<float>().size(), gpu_y.to_vector<float>().size());
}

// ---- batch norm

TEST(GpuBatchNorm, TrainingMatchesCpuAndUpdatesRunningStats) {
  SKIP_WITHOUT_CUDA();
  // The last has two channels of 68000 values: each channel's sums are split across blocks.
  const Shape shapes[] = {{4, 5, 3, 7}, {6, 3}, {3, 40, 1, 50}, {16, 2, 17, 250}};
  for (const Shape& shape : shapes)
    for (DType dt : kFloatTypes) {
      const int64_t C = shape[1];
      Tensor rm_cpu = cpu_rand({C}, dt, 90, -0.5, 0.5), rv_cpu = cpu_rand({C}, dt, 91, 0.5, 1.5);
      Tensor rm_gpu = rm_cpu.to(gpu()), rv_gpu = rv_cpu.to(gpu());
      int calls = 0;
      auto f = [&](const std::vector<Tensor>& v) {
        const bool on_gpu = v[0].device().is_cuda();
        ++calls;
        return batch_norm(v[0], on_gpu ? rm_gpu : rm_cpu, on_gpu ? rv_gpu : rv_cpu, v[1], v[2],
                          true, 0.1, 1e-5);
      };
      // Offset values: the statistics must not lose digits to a mean far from zero.
      Tensor x = cpu_rand(shape, dt, 92, 3, 7);
      expect_gpu_matches_cpu(f, {x, cpu_rand({C}, dt, 93), cpu_rand({C}, dt, 94)}, tol_for(dt),
                             true, shape_str(shape) + " " + dtype_name(dt));
      EXPECT_EQ(calls, 2);
      EXPECT_EQ(rm_gpu.device(), gpu());
      EXPECT_TRUE(all_close(rm_gpu, rm_cpu, tol_for(dt).atol, tol_for(dt).rtol)) << "running mean";
      EXPECT_TRUE(all_close(rv_gpu, rv_cpu, tol_for(dt).atol, tol_for(dt).rtol)) << "running var";
    }
}

TEST(GpuBatchNorm, EvalNoAffineAndHalf) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    Tensor rm = cpu_rand({5}, dt, 95, -0.5, 0.5), rv = cpu_rand({5}, dt, 96, 0.5, 1.5);
    auto eval = [&](const std::vector<Tensor>& v) {
      const Device d = v[0].device();
      return batch_norm(v[0], rm.to(d), rv.to(d), v[1], v[2], false, 0.1, 1e-5);
    };
    expect_gpu_matches_cpu(eval, {cpu_rand({3, 5, 4, 6}, dt, 97), cpu_rand({5}, dt, 98),
                                  cpu_rand({5}, dt, 99)},
                           tol_for(dt), true, std::string("eval ") + dtype_name(dt));
    auto plain = [&](const std::vector<Tensor>& v) {
      return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
    };
    expect_gpu_matches_cpu(plain, {cpu_rand({4, 5, 9}, dt, 100)}, tol_for(dt), true,
                           std::string("no affine, no running stats ") + dtype_name(dt));
  }
  auto half = [&](const std::vector<Tensor>& v) {
    return batch_norm(v[0], Tensor(), Tensor(), v[1], v[2], true, 0.1, 1e-5);
  };
  expect_gpu_matches_cpu(half, {cpu_rand({4, 3, 5}, DType::bf16, 101),
                                cpu_rand({3}, DType::bf16, 102), cpu_rand({3}, DType::bf16, 103)},
                         tol_for(DType::bf16), true, "bf16");
}

TEST(GpuBatchNorm, RunningStatsOnAnotherDeviceAreRefused) {
  SKIP_WITHOUT_CUDA();
  Tensor x = Tensor::ones({2, 3, 4}, DType::f32, gpu());
  const std::string msg =
      error_of([&] { batch_norm(x, Tensor::zeros({3}), Tensor::ones({3}), Tensor(), Tensor(), true, 0.1, 1e-5); });
  EXPECT_NE(msg.find("batch_norm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
}

}  // namespace
}  // namespace shallow::testing
