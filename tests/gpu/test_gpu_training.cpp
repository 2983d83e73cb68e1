// The ops a training step needs, on CUDA against the CPU: random numbers and dropout, the
// losses, L2 normalization, indexing, the optimizers and gradient clipping; then a small EEG
// encoder with the contrastive head trained on both devices from the same weights.
#include <cmath>
#include <memory>

#include "engine/cuda/ops.h"
#include "engine/nn/linear.h"
#include "engine/optim.h"
#include "models/contrastive.h"
#include "models/eeg/eeg_project.h"
#include "tests/gpu/gpu_test.h"

namespace shallow::testing {
namespace {

const DType kFloatTypes[] = {DType::f32, DType::f64};

// Exact equality (no tolerance), for results that must match bit for bit.
::testing::AssertionResult same_values(const Tensor& a, const Tensor& b) {
  return all_close(a, b, 0.0, 0.0);
}

Tensor index_tensor(const std::vector<int64_t>& v, DType dt = DType::i64) {
  return Tensor::from_vector<int64_t>(v, {int64_t(v.size())}).to(dt);
}

// ---- random factories

TEST(GpuRandom, SameGeneratorStateGivesTheCpuNumbers) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Generator a(77), b(77);
    a.advance(5);
    b.advance(5);
    // 1031 elements: the grid-stride tail. Uniform draws are computed alike, bit for bit.
    Tensor ru = uniform({1031}, -3.0, 5.0, dt, gpu(), &a);
    EXPECT_EQ(ru.device(), gpu());
    EXPECT_EQ(ru.dtype(), dt);
    EXPECT_TRUE(same_values(ru, uniform({1031}, -3.0, 5.0, dt, Device::cpu(), &b)));
    EXPECT_TRUE(same_values(rand({7, 9}, dt, gpu(), &a), rand({7, 9}, dt, &b)));
    // Normal draws go through the device's log and cos: equal to within an ulp or two.
    EXPECT_TRUE(all_close(randn({3, 333}, dt, gpu(), &a), randn({3, 333}, dt, &b), 1e-12, 1e-6));
    EXPECT_EQ(a.offset(), b.offset());
  }
}

TEST(GpuRandom, DefaultGeneratorIsPerDeviceAndReproducible) {
  SKIP_WITHOUT_CUDA();
  manual_seed(5);
  Tensor first = randn({1000}, DType::f32, gpu());
  Tensor second = randn({1000}, DType::f32, gpu());
  EXPECT_FALSE(all_close(first, second, 0.1, 0.0)) << "the offset advances between draws";
  // The draws came from cuda:0's generator, not the CPU's.
  EXPECT_EQ(default_generator(Device::cpu()).offset(), 0u);
  EXPECT_EQ(default_generator(gpu()).offset(), 2000u);
  manual_seed(5);
  EXPECT_TRUE(same_values(randn({1000}, DType::f32, gpu()), first));
  // Moments of 100000 normal draws: mean 0 and variance 1 within a few standard errors.
  Tensor big = randn({100000}, DType::f64, gpu());
  EXPECT_NEAR(mean(big).item(), 0.0, 0.02);
  EXPECT_NEAR(var(big, {0}).item(), 1.0, 0.03);
  Tensor u = rand({100000}, DType::f64, gpu());
  EXPECT_GE(min(u, {0}).item(), 0.0);
  EXPECT_LT(max(u, {0}).item(), 1.0);
  EXPECT_NEAR(mean(u).item(), 0.5, 0.01);
}

TEST(GpuRandom, WithoutCudaADeviceDrawIsRefusedAndDrawsNothing) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  Generator g(3);
  const std::string msg = error_of([&] { randn({4}, DType::f32, Device::cuda(0), &g); });
  EXPECT_NE(msg.find("device cuda:0 is not available"), std::string::npos) << msg;
  EXPECT_EQ(g.offset(), 0u) << "no counters reserved for a draw that failed";
  // On the CPU the device overload is the plain factory.
  Generator a(3), b(3);
  EXPECT_TRUE(same_values(uniform({9}, -1.0, 2.0, DType::f64, Device::cpu(), &a),
                          uniform({9}, -1.0, 2.0, DType::f64, &b)));
}

TEST(GpuRandom, BadDtypeIsRefusedByName) {
  SKIP_WITHOUT_CUDA();
  const std::string msg = error_of([] { rand({3}, DType::i64, gpu()); });
  EXPECT_NE(msg.find("rand: random tensors are f32 or f64, got i64"), std::string::npos) << msg;
}

// ---- dropout

TEST(GpuDropout, SameSeedGivesTheCpuMask) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = cpu_rand({37, 29}, dt, 80);
    Generator gc(9), gg(9);
    // Odd sizes, and a transposed (non-contiguous) input.
    EXPECT_TRUE(same_values(dropout(x.to(gpu()), 0.3, true, &gg), dropout(x, 0.3, true, &gc)));
    EXPECT_TRUE(
        same_values(dropout(x.to(gpu()).t(), 0.6, true, &gg), dropout(x.t(), 0.6, true, &gc)));
    Tensor x4 = cpu_rand({3, 5, 7, 2}, dt, 81);
    EXPECT_TRUE(
        same_values(dropout2d(x4.to(gpu()), 0.4, true, &gg), dropout2d(x4, 0.4, true, &gc)));
    EXPECT_EQ(gg.offset(), gc.offset());
  }
}

TEST(GpuDropout, KeepRateAndScale) {
  SKIP_WITHOUT_CUDA();
  for (double p : {0.1, 0.3, 0.75}) {
    SCOPED_TRACE(p);
    const int64_t n = 200003;
    Generator g(uint64_t(p * 100));
    std::vector<float> y =
        dropout(Tensor::ones({n}, DType::f32, gpu()), p, true, &g).to_vector<float>();
    const float scale = float(1.0 / (1.0 - p));
    int64_t kept = 0;
    for (float v : y) {
      if (v != 0.0f) {
        ++kept;
        ASSERT_EQ(v, scale) << "a kept element is scaled by 1/(1-p)";
      }
    }
    // Binomial: the standard deviation of the kept share is below 0.0011 here.
    EXPECT_NEAR(double(kept) / double(n), 1.0 - p, 0.006);
  }
  Tensor ones = Tensor::ones({100}, DType::f32, gpu());
  EXPECT_TRUE(same_values(dropout(ones, 1.0, true), Tensor::zeros({100}))) << "p = 1 drops all";
  EXPECT_TRUE(same_values(dropout(ones, 0.5, false), ones)) << "identity in eval mode";
  EXPECT_TRUE(same_values(dropout(ones, 0.0, true), ones)) << "identity at p = 0";
}

TEST(GpuDropout, BackwardUsesTheForwardMask) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (bool channels : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (channels ? " dropout2d" : " dropout"));
      Tensor x = cpu_rand({4, 6, 5, 3}, dt, 82, 0.5, 2.0).to(gpu());  // never zero
      x.set_requires_grad();
      Tensor y = channels ? dropout2d(x, 0.5, true) : dropout(x, 0.5, true);
      Tensor gy = cpu_rand(y.shape(), dt, 83).to(gpu());
      y.backward(gy);
      // gx = gy * mask * scale and y = x * mask * scale: gx * x == gy * y elementwise.
      EXPECT_TRUE(all_close(mul(x.grad(), x.detach()), mul(gy, y.detach()), 1e-6, 1e-6));
      EXPECT_EQ(x.grad().device(), gpu());
    }
  }
}

TEST(GpuDropout, SeedsDecideTheMask) {
  SKIP_WITHOUT_CUDA();
  Tensor x = Tensor::ones({4099}, DType::f32, gpu());
  Generator a(1), b(1), c(2);
  Tensor ya = dropout(x, 0.5, true, &a), yb = dropout(x, 0.5, true, &b),
         yc = dropout(x, 0.5, true, &c);
  EXPECT_TRUE(same_values(ya, yb)) << "same seed, same mask";
  EXPECT_FALSE(same_values(ya, yc)) << "different seeds, different masks";
  EXPECT_FALSE(same_values(ya, dropout(x, 0.5, true, &a))) << "the offset advances per call";
}

TEST(GpuDropout, ChannelsDropWholeAndHalfInputs) {
  SKIP_WITHOUT_CUDA();
  Generator g(3);
  std::vector<float> y =
      dropout2d(Tensor::ones({8, 16, 3, 5}, DType::f32, gpu()), 0.5, true, &g).to_vector<float>();
  for (size_t unit = 0; unit < 8 * 16; ++unit) {
    for (size_t j = 1; j < 15; ++j) ASSERT_EQ(y[unit * 15 + j], y[unit * 15]) << "unit " << unit;
  }
  Generator gc(4), gg(4);
  Tensor h = cpu_rand({33, 7}, DType::bf16, 84);
  Tensor yh = dropout(h.to(gpu()), 0.2, true, &gg);
  EXPECT_EQ(yh.dtype(), DType::bf16);
  EXPECT_TRUE(same_values(yh, dropout(h, 0.2, true, &gc)));
}

// ---- losses

TEST(GpuCrossEntropy, MatchesCpuForEveryReductionAndSmoothing) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    Shape logits;
    std::vector<int64_t> target;
  };
  const std::vector<Case> cases = {
      {{7, 5}, {0, 4, 2, 2, 1, 3, 0}},
      {{1, 1}, {0}},
      {{3, 300}, {299, 0, 150}},  // rows longer than a block's threads
      {{5}, {3}},                 // one unbatched row
  };
  for (const Case& c : cases) {
    for (DType dt : kFloatTypes) {
      for (double s : {0.0, 0.1}) {
        for (const char* red : {"mean", "sum", "none"}) {
          const Shape tshape = c.logits.size() == 2 ? Shape{c.logits[0]} : Shape{};
          Tensor t = index_tensor(c.target).reshape(tshape);
          Tensor x = cpu_rand(c.logits, dt, 90);
          auto f = [&](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1], s, red); };
          expect_gpu_matches_cpu(
              f, {x, t}, tol_for(dt), true,
              shape_str(c.logits) + " " + dtype_name(dt) + " s=" + std::to_string(s) + " " + red);
        }
      }
    }
  }
}

TEST(GpuCrossEntropy, ViewsCpuTargetsI32LargeLogitsAndBf16) {
  SKIP_WITHOUT_CUDA();
  // Transposed logits (the contrastive loss's second direction) with targets left on the CPU.
  Tensor x = cpu_rand({6, 9}, DType::f32, 91);
  Tensor t = index_tensor({1, 0, 5, 5, 2, 3, 4, 0, 1});
  auto ft = [&](const std::vector<Tensor>& v) { return cross_entropy(v[0].t(), t, 0.05); };
  expect_gpu_matches_cpu(ft, {x}, tol_for(DType::f32), true, "transposed, CPU targets");
  // i32 targets on the GPU.
  Tensor t32 = index_tensor({2, 0, 1, 1, 3, 0}, DType::i32);
  auto f32t = [](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1]); };
  expect_gpu_matches_cpu(f32t, {cpu_rand({6, 4}, DType::f64, 92), t32}, tol_for(DType::f64), true,
                         "i32 targets");
  // Logits in the thousands: the max is taken out before exp.
  Tensor big = mul(cpu_rand({4, 11}, DType::f32, 93), 1000.0);
  auto fb = [](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1], 0.0, "none"); };
  expect_gpu_matches_cpu(fb, {big, index_tensor({0, 10, 5, 3})}, {1e-3, 1e-5}, true, "large");
  Tensor h = cpu_rand({5, 8}, DType::bf16, 94);
  expect_gpu_matches_cpu(f32t, {h, index_tensor({7, 0, 1, 2, 3})}, tol_for(DType::bf16), true,
                         "bf16");
}

TEST(GpuCrossEntropy, BadTargetsAreRefusedByName) {
  SKIP_WITHOUT_CUDA();
  Tensor x = Tensor::zeros({3, 4}, DType::f32, gpu());
  const std::string range = error_of([&] { cross_entropy(x, index_tensor({0, 4, 1}).to(gpu())); });
  EXPECT_NE(range.find("cross_entropy: target 4 at index 1 is out of range for 4 classes"),
            std::string::npos)
      << range;
  const std::string shape = error_of([&] { cross_entropy(x, index_tensor({0, 1}).to(gpu())); });
  EXPECT_NE(shape.find("cross_entropy: target of shape [2] does not match logits of shape [3, 4]"),
            std::string::npos)
      << shape;
}

TEST(GpuMseLoss, MatchesCpu) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (const char* red : {"mean", "sum", "none"}) {
      Tensor a = cpu_rand({13, 7}, dt, 95), b = cpu_rand({7, 13}, dt, 96);
      // The target transposed: a non-contiguous operand.
      auto f = [&](const std::vector<Tensor>& v) { return mse_loss(v[0], v[1].t(), red); };
      expect_gpu_matches_cpu(f, {a, b}, tol_for(dt), true, std::string(dtype_name(dt)) + " " + red);
    }
  }
}

// ---- L2 normalization

TEST(GpuL2Normalize, EveryDimLongRowsAndZeroRows) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    Shape shape;
    int64_t dim;
  };
  const std::vector<Case> cases = {{{9, 33}, -1},  {{9, 33}, 0}, {{3, 4, 5}, 1},
                                   {{2, 1000}, 1}, {{17}, 0},    {{4, 1}, 1}};
  for (const Case& c : cases) {
    for (DType dt : kFloatTypes) {
      Tensor x = cpu_rand(c.shape, dt, 100);
      auto f = [&](const std::vector<Tensor>& v) { return l2_normalize(v[0], c.dim); };
      expect_gpu_matches_cpu(
          f, {x}, tol_for(dt), true,
          shape_str(c.shape) + " dim " + std::to_string(c.dim) + " " + dtype_name(dt));
    }
  }
  // A zero row (the eps clamp and its gradient), and a row of tiny values, in both layouts.
  Tensor z = cpu_rand({4, 6}, DType::f64, 101);
  z.narrow(0, 1, 1).fill_(0.0);
  z.narrow(0, 2, 1).fill_(1e-14);
  for (int64_t dim : {1, 0}) {
    auto f = [&](const std::vector<Tensor>& v) { return l2_normalize(v[0], dim, 1e-12); };
    expect_gpu_matches_cpu(f, {z}, tol_for(DType::f64), true,
                           "zero rows, dim " + std::to_string(dim));
  }
}

TEST(GpuL2Normalize, ViewsAndBf16) {
  SKIP_WITHOUT_CUDA();
  Tensor x = cpu_rand({12, 20}, DType::f32, 102);
  auto f = [](const std::vector<Tensor>& v) {
    return l2_normalize(v[0].slice(1, 1, 20, 2).t(), -1);
  };
  expect_gpu_matches_cpu(f, {x}, tol_for(DType::f32), true, "strided, transposed");
  Tensor h = cpu_rand({5, 40}, DType::bf16, 103);
  auto fh = [](const std::vector<Tensor>& v) { return l2_normalize(v[0]); };
  expect_gpu_matches_cpu(fh, {h}, tol_for(DType::bf16), true, "bf16");
}

// ---- indexing

TEST(GpuIndexing, IndexSelectAndEmbeddingWithRepeats) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (DType it : {DType::i64, DType::i32}) {
      const std::string what = std::string(dtype_name(dt)) + " " + dtype_name(it);
      Tensor x = cpu_rand({5, 7, 3}, dt, 110);
      for (int64_t dim : {0, 1, 2}) {
        Tensor idx = index_tensor({2, 0, 2, 1, 2}, it);  // repeated rows add up in the backward
        auto f = [&](const std::vector<Tensor>& v) { return index_select(v[0], dim, v[1]); };
        expect_gpu_matches_cpu(f, {x, idx}, tol_for(dt), true,
                               what + " dim " + std::to_string(dim));
      }
      Tensor w = cpu_rand({11, 6}, dt, 111);
      Tensor ids = Tensor::from_vector<int64_t>({3, 10, 3, 0, 7, 3}, {2, 3}).to(it);
      auto fe = [](const std::vector<Tensor>& v) { return embedding(v[0], v[1]); };
      expect_gpu_matches_cpu(fe, {w, ids}, tol_for(dt), true, what + " embedding");
    }
  }
  // An index left on the CPU, a transposed input, bf16 and integer data.
  Tensor x = cpu_rand({6, 9}, DType::f32, 112);
  Tensor idx = index_tensor({8, 1, 1});
  auto fv = [&](const std::vector<Tensor>& v) { return index_select(v[0].t(), 0, idx); };
  expect_gpu_matches_cpu(fv, {x}, tol_for(DType::f32), true, "CPU index, transposed");
  Tensor h = cpu_rand({6, 9}, DType::bf16, 113);
  auto fh = [&](const std::vector<Tensor>& v) { return index_select(v[0], 1, idx); };
  expect_gpu_matches_cpu(fh, {h}, tol_for(DType::bf16), true, "bf16");
  Tensor ints = Tensor::arange(24, DType::i64).reshape({4, 6});
  Tensor cols = index_tensor({5, 1, 1});
  EXPECT_TRUE(
      same_values(index_select(ints.to(gpu()), 1, cols.to(gpu())), index_select(ints, 1, cols)));
}

// Rows of 512 bytes or more are copied a block per row, in 16-, 8- or 4-byte words where the
// row length and both pointers allow, else element by element: each case, with more than one
// outer index and a source that starts past a row boundary, against the CPU bit for bit.
TEST(GpuIndexing, IndexSelectWholeRowsInEveryWordWidth) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    DType dt;
    int64_t inner;
    const char* words;
  };
  for (const Case c : {Case{DType::f32, 128, "16-byte"}, Case{DType::f32, 4250, "8-byte"},
                       Case{DType::f32, 129, "4-byte"}, Case{DType::bf16, 257, "2-byte"},
                       Case{DType::f32, 127, "per-element"}, Case{DType::f64, 64, "16-byte f64"}}) {
    Tensor x = cpu_rand({2, 9, c.inner}, c.dt, 114);
    Tensor idx = index_tensor({8, 0, 3, 3, 7});
    const std::string what = std::string(c.words) + " words, inner " + std::to_string(c.inner);
    EXPECT_TRUE(same_values(index_select(x.to(gpu()), 1, idx.to(gpu())), index_select(x, 1, idx)))
        << what;
    // rows 1.. of the first matrix: the base pointer moves by one row (inner * size bytes)
    Tensor part = x.select(0, 0).narrow(0, 1, 8);
    Tensor idx2 = index_tensor({7, 0, 5});
    EXPECT_TRUE(same_values(index_select(part.to(gpu()), 0, idx2.to(gpu())),
                            index_select(part, 0, idx2)))
        << what << ", offset source";
    Tensor part_gpu = x.to(gpu()).select(0, 1).narrow(0, 1, 8);
    EXPECT_TRUE(same_values(index_select(part_gpu, 0, idx2.to(gpu())),
                            index_select(x.select(0, 1).narrow(0, 1, 8), 0, idx2)))
        << what << ", offset view on the GPU";
  }
}

TEST(GpuIndexing, GatherWithSmallerIndex) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    Tensor x = cpu_rand({4, 6, 5}, dt, 120);
    // The index reaches a corner of x in the other dims; repeated picks add up.
    Tensor i0 = Tensor::from_vector<int64_t>({3, 0, 3, 1, 2, 2, 0, 0, 3, 1, 1, 1}, {2, 3, 2});
    Tensor i1 = Tensor::from_vector<int64_t>({5, 0, 5, 2, 4, 4, 1, 1, 0, 3, 3, 3}, {3, 2, 2});
    Tensor i2 = Tensor::from_vector<int64_t>({4, 4, 0, 1, 2, 3}, {1, 2, 3}).to(DType::i32);
    const std::vector<std::pair<int64_t, Tensor>> cases = {{0, i0}, {1, i1}, {-1, i2}};
    for (const auto& [dim, idx] : cases) {
      auto f = [&](const std::vector<Tensor>& v) { return gather(v[0], dim, v[1]); };
      expect_gpu_matches_cpu(f, {x, idx}, tol_for(dt), true,
                             std::string(dtype_name(dt)) + " dim " + std::to_string(dim));
    }
  }
}

TEST(GpuIndexing, WhereAndMaskedFillBroadcast) {
  SKIP_WITHOUT_CUDA();
  Tensor cond_u8 = gt(cpu_rand({4, 1, 6}, DType::f32, 130), Tensor::scalar(0.0)).to(DType::u8);
  Tensor cond_f = Tensor::from_vector<double>({0, 1, -0.5, 0, 0, 2}, {6});
  for (DType dt : kFloatTypes) {
    Tensor a = cpu_rand({4, 5, 6}, dt, 131), b = cpu_rand({5, 1}, dt, 132);
    auto f = [&](const std::vector<Tensor>& v) { return where(v[0], v[1], v[2]); };
    expect_gpu_matches_cpu(f, {cond_u8, a, b}, tol_for(dt), true,
                           std::string(dtype_name(dt)) + " u8");
    // A float condition (taken to the operands' device inside: as an input of the helper it
    // would be made a leaf that needs a gradient), and a transposed operand.
    auto ff = [&](const std::vector<Tensor>& v) {
      return where(cond_f.to(dt).to(v[0].device()), v[0], v[1]);
    };
    expect_gpu_matches_cpu(ff, {a, b}, tol_for(dt), true,
                           std::string(dtype_name(dt)) + " float condition");
    auto ft = [&](const std::vector<Tensor>& v) {
      return where(cond_f.reshape({1, 6}).to(dt).to(v[0].device()), v[0].transpose(1, 2), v[1]);
    };
    Tensor at = cpu_rand({4, 6, 5}, dt, 133);
    expect_gpu_matches_cpu(ft, {at, b}, tol_for(dt), true,
                           std::string(dtype_name(dt)) + " transposed");
    auto fm = [&](const std::vector<Tensor>& v) { return masked_fill(v[0], v[1], -7.5); };
    expect_gpu_matches_cpu(fm, {a, cond_u8}, tol_for(dt), true,
                           std::string(dtype_name(dt)) + " masked_fill");
  }
  Tensor h = cpu_rand({4, 5, 6}, DType::bf16, 134);
  auto fh = [](const std::vector<Tensor>& v) { return masked_fill(v[0], v[1], 3.0); };
  expect_gpu_matches_cpu(fh, {h, cond_u8}, tol_for(DType::bf16), true, "bf16 masked_fill");
  // pow's backward uses where: it now runs on CUDA too.
  auto fp = [](const std::vector<Tensor>& v) { return pow(v[0], v[1]); };
  expect_gpu_matches_cpu(fp,
                         {cpu_rand({9}, DType::f64, 135, 0.1, 2.0), cpu_rand({9}, DType::f64, 136)},
                         tol_for(DType::f64), true, "pow");
}

TEST(GpuIndexing, ConcatStackSplit) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    Tensor a = cpu_rand({3, 4}, dt, 140), b = cpu_rand({3, 2}, dt, 141),
           c = cpu_rand({4, 3}, dt, 142);
    auto fc = [](const std::vector<Tensor>& v) { return concat({v[0], v[1], v[2].t()}, 1); };
    expect_gpu_matches_cpu(fc, {a, b, c}, tol_for(dt), true,
                           std::string(dtype_name(dt)) + " concat");
    auto fs = [](const std::vector<Tensor>& v) { return stack({v[0], v[1].t()}, 1); };
    expect_gpu_matches_cpu(fs, {a, cpu_rand({4, 3}, dt, 143)}, tol_for(dt), true,
                           std::string(dtype_name(dt)) + " stack");
    auto fsp = [](const std::vector<Tensor>& v) {
      std::vector<Tensor> parts = split(v[0], 3, 1);  // 3, 3, 1
      return concat({mul(parts[2], 2.0), parts[0], exp(parts[1])}, 1);
    };
    expect_gpu_matches_cpu(fsp, {cpu_rand({2, 7}, dt, 144)}, tol_for(dt), true,
                           std::string(dtype_name(dt)) + " split");
  }
}

TEST(GpuIndexing, OutOfRangeIndicesAreRefusedByName) {
  SKIP_WITHOUT_CUDA();
  Tensor x = Tensor::zeros({4, 3}, DType::f32, gpu());
  const std::string sel = error_of([&] { index_select(x, 0, index_tensor({1, 4}).to(gpu())); });
  EXPECT_NE(sel.find("index_select: index 4 is out of range for dim 0 of size 4"),
            std::string::npos)
      << sel;
  const std::string emb = error_of([&] { embedding(x, index_tensor({-1}).to(gpu())); });
  EXPECT_NE(emb.find("embedding: index -1 is out of range"), std::string::npos) << emb;
  Tensor gi = Tensor::from_vector<int64_t>({0, 3}, {1, 2}).to(gpu());
  const std::string gat = error_of([&] { gather(x, 1, gi); });
  EXPECT_NE(gat.find("gather: index 3 is out of range for dim 1 of size 3"), std::string::npos)
      << gat;
  const std::string mixed = error_of([&] { where(Tensor::ones({3}, DType::u8), x, x); });
  EXPECT_NE(mixed.find("where: devices differ"), std::string::npos) << mixed;
}

// ---- optimizers and gradient clipping

// A small two-layer network with a squared loss; its parameters are copies of `init` on `device`.
struct TinyNet {
  std::vector<Tensor> params;  // w1 [16, 12], b1 [16], w2 [3, 16], b2 [3]
  TinyNet(const std::vector<Tensor>& init, Device device) {
    for (const Tensor& t : init) {
      Tensor p = t.detach().to(device).clone();
      p.set_requires_grad();
      params.push_back(p);
    }
  }
  Tensor loss(const Tensor& x, const Tensor& y) const {
    Tensor h = gelu(linear(x, params[0], params[1]));
    return mse_loss(linear(h, params[2], params[3]), y);
  }
};

std::vector<Tensor> tiny_init(DType dt) {
  return {cpu_rand({16, 12}, dt, 150, -0.3, 0.3), cpu_rand({16}, dt, 151, -0.1, 0.1),
          cpu_rand({3, 16}, dt, 152, -0.3, 0.3), cpu_rand({3}, dt, 153, -0.1, 0.1)};
}

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

// 20 steps on both devices from the same weights and batches (with gradient clipping when
// max_norm > 0), then the parameters compared. Learning rates stay small enough that the runs
// do not oscillate, which would amplify the devices' last-bit differences.
void expect_same_training(const MakeOptimizer& make, DType dt, double max_norm,
                          const std::string& what) {
  SCOPED_TRACE(what + " " + dtype_name(dt));
  const std::vector<Tensor> init = tiny_init(dt);
  TinyNet on_cpu(init, Device::cpu()), on_gpu(init, gpu());
  auto opt_cpu = make(on_cpu.params), opt_gpu = make(on_gpu.params);
  for (int step = 0; step < 20; ++step) {
    Tensor x = cpu_rand({10, 12}, dt, 200 + uint64_t(step));
    Tensor y = cpu_rand({10, 3}, dt, 300 + uint64_t(step));
    opt_cpu->zero_grad();
    opt_gpu->zero_grad();
    on_cpu.loss(x, y).backward();
    on_gpu.loss(x.to(gpu()), y.to(gpu())).backward();
    if (max_norm > 0) {
      const double n_cpu = optim::clip_grad_norm_(on_cpu.params, max_norm);
      const double n_gpu = optim::clip_grad_norm_(on_gpu.params, max_norm);
      EXPECT_NEAR(n_gpu, n_cpu, 1e-5 * n_cpu) << "step " << step;
    }
    opt_cpu->step();
    opt_gpu->step();
  }
  const Tol t = dt == DType::f32 ? Tol{1e-6, 1e-5} : tol_for(dt);
  for (size_t i = 0; i < init.size(); ++i) {
    EXPECT_EQ(on_gpu.params[i].device(), gpu());
    EXPECT_TRUE(all_close(on_gpu.params[i], on_cpu.params[i], t.atol, t.rtol)) << "parameter " << i;
  }
}

TEST(GpuOptim, TwentyStepsMatchTheCpu) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    expect_same_training(
        [](std::vector<Tensor> p) {
          return std::make_unique<optim::AdamW>(p,
                                                optim::AdamWOptions{1e-2, 0.9, 0.999, 1e-8, 0.05});
        },
        dt, 0.0, "AdamW");
    expect_same_training(
        [](std::vector<Tensor> p) {
          optim::AdamOptions o;
          o.lr = 1e-2;
          o.weight_decay = 0.01;
          o.amsgrad = true;
          return std::make_unique<optim::Adam>(p, o);
        },
        dt, 0.0, "Adam amsgrad");
    expect_same_training(
        [](std::vector<Tensor> p) {
          return std::make_unique<optim::SGD>(p, optim::SgdOptions{0.01, 0.9, 0.0, 1e-3, true});
        },
        dt, 0.0, "SGD nesterov");
    expect_same_training(
        [](std::vector<Tensor> p) {
          return std::make_unique<optim::SGD>(p, optim::SgdOptions{0.02, 0.8, 0.1, 0.0, false});
        },
        dt, 0.0, "SGD dampening");
    expect_same_training(
        [](std::vector<Tensor> p) {
          return std::make_unique<optim::SGD>(p, optim::SgdOptions{0.05});
        },
        dt, 0.0, "SGD plain");
    expect_same_training(
        [](std::vector<Tensor> p) {
          return std::make_unique<optim::AdamW>(p, optim::AdamWOptions{});
        },
        dt, 0.05, "AdamW clipped");
  }
}

TEST(GpuOptim, StateStaysOnTheDeviceAndLoadsFromTheCpu) {
  SKIP_WITHOUT_CUDA();
  const std::vector<Tensor> init = tiny_init(DType::f32);
  TinyNet net(init, gpu());
  optim::AdamW opt(net.params, optim::AdamWOptions{1e-2});
  Tensor x = cpu_rand({10, 12}, DType::f32, 160).to(gpu()),
         y = cpu_rand({10, 3}, DType::f32, 161).to(gpu());
  net.loss(x, y).backward();
  opt.step();
  const optim::StateDict state = opt.state_dict();
  EXPECT_EQ(state.at("state.0.exp_avg").device(), gpu());
  // A state saved on the CPU (as the checkpoint writers need) loads back onto the device.
  optim::StateDict on_cpu;
  for (const auto& [name, t] : state) on_cpu[name] = t.to(Device::cpu());
  TinyNet other(init, gpu());
  optim::AdamW resumed(other.params, optim::AdamWOptions{1e-2});
  resumed.load_state_dict(on_cpu);
  EXPECT_EQ(resumed.state_dict().at("state.0.exp_avg_sq").device(), gpu());
  EXPECT_TRUE(same_values(resumed.state_dict().at("state.2.exp_avg"), state.at("state.2.exp_avg")));
  // zero_grad drops the device gradients.
  opt.zero_grad();
  for (const Tensor& p : net.params) EXPECT_FALSE(p.grad().defined());
}

TEST(GpuClipGradNorm, EveryNormTypeAgainstTheCpu) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (double norm_type : {2.0, 1.0, 3.0, optim::kInfNorm}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " p=" + std::to_string(norm_type));
      // One gradient large enough for the full 1024 partial blocks, one tiny, one empty.
      const std::vector<Shape> shapes = {{300001}, {3}, {0}, {17, 5}};
      std::vector<Tensor> pc, pg;
      for (size_t i = 0; i < shapes.size(); ++i) {
        Tensor g = cpu_rand(shapes[i], dt, 170 + i);
        Tensor c = Tensor::zeros(shapes[i], dt), d = Tensor::zeros(shapes[i], dt, gpu());
        c.set_grad(g);
        d.set_grad(g.to(gpu()));
        pc.push_back(c);
        pg.push_back(d);
      }
      const double n_cpu = optim::clip_grad_norm_(pc, 1.5, norm_type);
      const double n_gpu = optim::clip_grad_norm_(pg, 1.5, norm_type);
      EXPECT_NEAR(n_gpu, n_cpu, (dt == DType::f32 ? 1e-6 : 1e-12) * n_cpu);
      for (size_t i = 0; i < shapes.size(); ++i) {
        EXPECT_EQ(pg[i].grad().device(), gpu());
        EXPECT_TRUE(all_close(pg[i].grad(), pc[i].grad(), 1e-7, 1e-6)) << "gradient " << i;
      }
    }
  }
  // A NaN gradient gives a NaN norm, as on the CPU.
  Tensor p = Tensor::zeros({5}, DType::f32, gpu());
  p.set_grad(Tensor::from_vector<float>({1, NAN, 2, 3, 4}, {5}).to(gpu()));
  EXPECT_TRUE(std::isnan(optim::clip_grad_norm_({p}, 1.0)));
  p.set_grad(Tensor::from_vector<float>({1, NAN, 2, 3, 4}, {5}).to(gpu()));
  EXPECT_TRUE(std::isnan(optim::clip_grad_norm_({p}, 1.0, optim::kInfNorm)));
}

TEST(GpuOptim, MismatchedGradientDeviceIsRefused) {
  SKIP_WITHOUT_CUDA();
  Tensor p = Tensor::zeros({3}, DType::f32, gpu());
  p.set_requires_grad();
  optim::SGD opt(std::vector<Tensor>{p}, optim::SgdOptions{0.1});
  p.set_grad(Tensor::ones({3}));
  const std::string msg = error_of([&] { opt.step(); });
  EXPECT_NE(msg.find("SGD: gradient f32 [3] on cpu does not match its parameter f32 [3] on cuda:0"),
            std::string::npos)
      << msg;
}

// ---- an EEG encoder with the contrastive head, trained on both devices

struct EegRun {
  std::shared_ptr<models::EegProject> encoder;
  std::shared_ptr<models::ContrastiveHead> head;
};

EegRun make_eeg_run(double dropout) {
  // Modules draw their initial weights from the CPU generator: the same seed, the same weights.
  manual_seed(1234);
  EegRun r;
  r.encoder = std::make_shared<models::EegProject>(models::EegShape{5, 12}, 24, dropout);
  r.head = std::make_shared<models::ContrastiveHead>(models::ContrastiveConfig{24, 10, 16, 0.07});
  return r;
}

// Losses of 20 AdamW steps on `device`, all on one batch (so that the loss must go down).
std::vector<double> train_eeg(EegRun& r, Device device) {
  r.encoder->to(device);
  r.head->to(device);
  std::vector<Tensor> params = r.encoder->parameters();
  for (const Tensor& p : r.head->parameters()) params.push_back(p);
  optim::AdamW opt(params, optim::AdamWOptions{1e-3});
  std::vector<double> losses;
  manual_seed(99);  // every device's generator: dropout masks are drawn alike
  const Tensor eeg = cpu_rand({8, 5, 12}, DType::f32, 400).to(device);
  const Tensor image = cpu_rand({8, 10}, DType::f32, 500).to(device);
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    Tensor loss =
        r.head->loss(r.head->embed_eeg(r.encoder->forward(eeg)), r.head->embed_image(image));
    loss.backward();
    optim::clip_grad_norm_(params, 1.0);
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}

TEST(GpuTraining, EegProjectWithContrastiveHeadMatchesTheCpu) {
  SKIP_WITHOUT_CUDA();
  // Without dropout (p = 0) and then with dropout 0.3 in training mode: the CUDA generator,
  // seeded alike, draws the CPU's masks.
  for (double p : {0.0, 0.3}) {
    SCOPED_TRACE(p);
    EegRun cpu_run = make_eeg_run(p), gpu_run = make_eeg_run(p);
    const std::vector<double> l_cpu = train_eeg(cpu_run, Device::cpu());
    const std::vector<double> l_gpu = train_eeg(gpu_run, gpu());
    EXPECT_EQ(gpu_run.head->parameters()[0].device(), gpu());
    for (size_t i = 0; i < l_cpu.size(); ++i)
      EXPECT_NEAR(l_gpu[i], l_cpu[i], 1e-4 * std::fabs(l_cpu[i])) << "step " << i;
    EXPECT_LT(l_gpu.back(), l_gpu.front()) << "the model trains";
  }
}

}  // namespace
}  // namespace shallow::testing
