// conv2d / conv1d: forward and gradients against PyTorch, gradcheck per configuration class,
// strided inputs, thread counts, and bad arguments.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "kernels/cpu/conv.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradcheck.h"
#include "tests/support/errors.h"

using namespace shallow;
using shallow::testing::error_of;
using shallow::testing::all_close;
using shallow::testing::Fixture;
using shallow::testing::gradcheck;
using shallow::testing::rand_input;

namespace {

// The same values with every other element of the last dim skipped in memory.
Tensor strided_copy(const Tensor& x) {
  Shape big = x.shape();
  big.back() *= 2;
  Tensor v = Tensor::zeros(big, x.dtype()).slice(-1, 0, big.back(), 2);
  v.copy_(x);
  return v;
}

// The same values stored with the last two dims swapped.
Tensor transposed_copy(const Tensor& x) { return x.transpose(-1, -2).contiguous().transpose(-1, -2); }

Int2 int2(const nlohmann::json& j) { return {j[0].get<int64_t>(), j[1].get<int64_t>()}; }

nlohmann::json cases(const Fixture& f, const char* family) {
  return nlohmann::json::parse(f.metadata().at("cases"))[family];
}

Tensor leaf(const Tensor& t) { return t.clone().set_requires_grad(true); }

}  // namespace

TEST(Conv2d, MatchesPyTorch) {
  Fixture f("ops_conv");
  const auto list = cases(f, "conv2d");
  ASSERT_GE(list.size(), 15u);
  for (const auto& c : list) {
    const std::string key = "conv2d." + c["name"].get<std::string>();
    SCOPED_TRACE(key);
    const Tensor x = f.get(key + ".x"), w = f.get(key + ".w");
    const Tensor b = c["bias"].get<bool>() ? f.get(key + ".b") : Tensor();
    const Int2 stride = int2(c["stride"]), padding = int2(c["padding"]), dilation = int2(c["dilation"]);
    const int64_t groups = c["groups"];
    const Tensor expected = f.get(key + ".y");
    EXPECT_TRUE(all_close(conv2d(x, w, b, stride, padding, dilation, groups), expected, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(conv2d(strided_copy(x), transposed_copy(w), b, stride, padding,
                                 dilation, groups),
                          expected, 1e-4, 1e-4));
    if (!c["grads"].get<bool>()) continue;
    Tensor xl = leaf(x), wl = leaf(w), bl = b.defined() ? leaf(b) : Tensor();
    conv2d(xl, wl, bl, stride, padding, dilation, groups).backward(f.get(key + ".gy"));
    EXPECT_TRUE(all_close(xl.grad(), f.get(key + ".gx"), 1e-4, 1e-4));
    EXPECT_TRUE(all_close(wl.grad(), f.get(key + ".gw"), 1e-4, 1e-4));
    if (b.defined()) {
      EXPECT_TRUE(all_close(bl.grad(), f.get(key + ".gb"), 1e-4, 1e-4));
    }
  }
}

TEST(Conv1d, MatchesPyTorch) {
  Fixture f("ops_conv");
  const auto list = cases(f, "conv1d");
  ASSERT_GE(list.size(), 3u);
  for (const auto& c : list) {
    const std::string key = "conv1d." + c["name"].get<std::string>();
    SCOPED_TRACE(key);
    const Tensor x = f.get(key + ".x"), w = f.get(key + ".w");
    const Tensor b = c["bias"].get<bool>() ? f.get(key + ".b") : Tensor();
    const int64_t stride = c["stride"], padding = c["padding"], dilation = c["dilation"],
                  groups = c["groups"];
    EXPECT_TRUE(all_close(conv1d(strided_copy(x), w, b, stride, padding, dilation, groups),
                          f.get(key + ".y"), 1e-4, 1e-4));
    if (!c["grads"].get<bool>()) continue;
    Tensor xl = leaf(x), wl = leaf(w), bl = b.defined() ? leaf(b) : Tensor();
    conv1d(xl, wl, bl, stride, padding, dilation, groups).backward(f.get(key + ".gy"));
    EXPECT_TRUE(all_close(xl.grad(), f.get(key + ".gx"), 1e-4, 1e-4));
    EXPECT_TRUE(all_close(wl.grad(), f.get(key + ".gw"), 1e-4, 1e-4));
    if (b.defined()) {
      EXPECT_TRUE(all_close(bl.grad(), f.get(key + ".gb"), 1e-4, 1e-4));
    }
  }
}

// One gradcheck per path through the kernels: im2col (dense, strided, dilated, grouped),
// the pointwise shortcut, and the depthwise loops.
TEST(Conv2d, Gradcheck) {
  struct Case {
    Shape x, w;
    bool bias;
    Int2 stride, padding, dilation;
    int64_t groups;
  };
  const std::vector<Case> list = {
      {{2, 2, 5, 6}, {3, 2, 3, 2}, true, {1, 1}, {0, 0}, {1, 1}, 1},
      {{1, 2, 6, 5}, {3, 2, 3, 3}, false, {2, 2}, {1, 1}, {1, 1}, 1},
      {{1, 2, 7, 6}, {2, 2, 2, 3}, true, {1, 2}, {2, 1}, {2, 2}, 1},
      {{2, 4, 4, 5}, {6, 2, 3, 3}, true, {1, 1}, {1, 1}, {1, 1}, 2},
      {{2, 3, 5, 5}, {3, 1, 3, 3}, true, {1, 1}, {1, 1}, {1, 1}, 3},    // depthwise
      {{1, 2, 6, 7}, {4, 1, 3, 2}, false, {2, 1}, {1, 1}, {2, 2}, 2},   // depthwise x2, dilated
      {{2, 3, 3, 4}, {4, 3, 1, 1}, true, {1, 1}, {0, 0}, {1, 1}, 1},    // pointwise
      {{1, 4, 3, 3}, {2, 2, 1, 1}, false, {1, 1}, {0, 0}, {1, 1}, 2},   // pointwise, grouped
      {{1, 2, 5, 5}, {3, 2, 1, 1}, false, {2, 2}, {0, 0}, {1, 1}, 1},   // 1x1, stride 2
      {{1, 1, 2, 9}, {3, 1, 1, 4}, true, {1, 1}, {0, 0}, {1, 1}, 1},    // temporal (EEG)
      {{2, 3, 4, 5}, {3, 3, 4, 1}, true, {1, 1}, {0, 0}, {1, 1}, 1},    // full height (EEG spatial)
      {{2, 2, 5, 7}, {3, 2, 2, 3}, false, {2, 1}, {1, 0}, {2, 1}, 1},   // few rows, padded in H
      {{2, 1, 2, 6}, {3, 1, 1, 4}, true, {1, 1}, {0, 2}, {1, 1}, 1},    // padded in W (EEGNet)
  };
  uint64_t seed = 1;
  for (const Case& c : list) {
    SCOPED_TRACE(shape_str(c.x) + " * " + shape_str(c.w));
    std::vector<Tensor> in = {rand_input(c.x, seed++), rand_input(c.w, seed++)};
    if (c.bias) in.push_back(rand_input({c.w[0]}, seed++));
    EXPECT_TRUE(gradcheck(
        [&](const std::vector<Tensor>& t) {
          return conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), c.stride, c.padding,
                        c.dilation, c.groups);
        },
        in));
  }
}

TEST(Conv1d, Gradcheck) {
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& t) { return conv1d(t[0], t[1], t[2], 2, 1, 2, 2); },
      {rand_input({2, 4, 9}, 1), rand_input({4, 2, 3}, 2), rand_input({4}, 3)}));
}

// The gradchecks above reach the direct CPU paths (kernels/cpu/conv.h), not only the generic one.
TEST(Conv2d, GradcheckShapesTakeTheDirectPaths) {
#if defined(__AVX512F__)
  auto path = [](Shape x, Shape w, Int2 stride, Int2 padding, Int2 dilation) {
    cpu::Conv2dShape s;
    s.N = x[0], s.C_in = x[1], s.H = x[2], s.W = x[3], s.C_out = w[0], s.kH = w[2], s.kW = w[3];
    s.stride_h = stride[0], s.stride_w = stride[1], s.pad_h = padding[0], s.pad_w = padding[1];
    s.dil_h = dilation[0], s.dil_w = dilation[1];
    return cpu::conv2d_path(s);
  };
  EXPECT_EQ(path({2, 3, 3, 4}, {4, 3, 1, 1}, {1, 1}, {0, 0}, {1, 1}), cpu::Conv2dPath::columns);
  EXPECT_EQ(path({2, 3, 4, 5}, {3, 3, 4, 1}, {1, 1}, {0, 0}, {1, 1}), cpu::Conv2dPath::columns);
  EXPECT_EQ(path({1, 1, 2, 9}, {3, 1, 1, 4}, {1, 1}, {0, 0}, {1, 1}), cpu::Conv2dPath::rows);
  EXPECT_EQ(path({2, 2, 5, 7}, {3, 2, 2, 3}, {2, 1}, {1, 0}, {2, 1}), cpu::Conv2dPath::rows);
  EXPECT_EQ(path({2, 1, 2, 6}, {3, 1, 1, 4}, {1, 1}, {0, 2}, {1, 1}), cpu::Conv2dPath::rows);
#else
  GTEST_SKIP() << "the direct paths need AVX-512";
#endif
}

// Every thread count takes the same values through a different split of the work.
TEST(Conv2d, ThreadCountsAgree) {
  const int before = num_threads();
  Tensor x = rand_input({3, 4, 9, 8}, 1).detach(), w = rand_input({6, 2, 3, 3}, 2).detach();
  Tensor dw = rand_input({8, 1, 3, 3}, 3).detach();
  auto run = [&] {
    Tensor xl = leaf(x), wl = leaf(w), dwl = leaf(dw);
    Tensor y = conv2d(xl, wl, Tensor(), {2, 1}, {1, 1}, {1, 2}, 2);
    Tensor z = conv2d(xl, dwl, Tensor(), {1, 1}, {1, 1}, {1, 1}, 4);
    add(sum(y), sum(mul(z, z))).backward();
    return std::vector<Tensor>{y, z, xl.grad(), wl.grad(), dwl.grad()};
  };
  set_num_threads(1);
  const auto one = run();
  for (int n : {2, 3, 8}) {
    set_num_threads(n);
    const auto many = run();
    for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(all_close(many[i], one[i], 1e-12, 1e-12)) << n << " threads, " << i;
  }
  set_num_threads(before);
}

TEST(Conv2d, HalfInputsComputeInF32) {
  Tensor x = rand_input({1, 2, 5, 5}, 1).detach().to(DType::f32);
  Tensor w = rand_input({3, 2, 3, 3}, 2).detach().to(DType::f32);
  Tensor y = conv2d(x.to(DType::bf16), w.to(DType::bf16), Tensor(), {1, 1}, {1, 1});
  EXPECT_EQ(y.dtype(), DType::bf16);
  EXPECT_TRUE(all_close(y.to(DType::f32), conv2d(x, w, Tensor(), {1, 1}, {1, 1}), 0.1, 0.02));
}

TEST(Conv2d, BadArgumentsRaise) {
  const Tensor x = Tensor::zeros({2, 4, 5, 5}), w = Tensor::zeros({6, 4, 3, 3});
  auto msg = error_of([&] { conv2d(x, Tensor::zeros({6, 3, 3, 3})); });
  EXPECT_NE(msg.find("conv2d: input [2, 4, 5, 5] has 4 channels but weight [6, 3, 3, 3]"),
            std::string::npos) << msg;
  msg = error_of([&] { conv2d(x, Tensor::zeros({6, 2, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 3); });
  EXPECT_NE(msg.find("groups 3 must divide"), std::string::npos) << msg;
  msg = error_of([&] { conv2d(x, Tensor::zeros({5, 2, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2); });
  EXPECT_NE(msg.find("groups 2 must divide"), std::string::npos) << msg;
  msg = error_of([&] { conv2d(x, Tensor::zeros({6, 4, 8, 3})); });
  EXPECT_NE(msg.find("larger than the padded input [2, 4, 5, 5]"), std::string::npos) << msg;
  EXPECT_EQ(error_of([&] { conv2d(x, Tensor::zeros({6, 4, 7, 3}), Tensor(), {1, 1}, {1, 1}); }), "");
  msg = error_of([&] { conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {3, 1}); });
  EXPECT_NE(msg.find("extent 7"), std::string::npos) << msg;
  msg = error_of([&] { conv2d(x, w, Tensor::zeros({5})); });
  EXPECT_NE(msg.find("conv2d: bias [5] does not match weight [6, 4, 3, 3]"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { conv2d(x, w, Tensor(), {0, 1}); }).find("conv2d: stride"), std::string::npos);
  EXPECT_NE(error_of([&] { conv2d(x, w, Tensor(), {1, 1}, {-1, 0}); }).find("padding"), std::string::npos);
  EXPECT_NE(error_of([&] { conv2d(x.select(0, 0), w); }).find("must be 4-D"), std::string::npos);
  EXPECT_NE(error_of([&] { conv2d(x, w.to(DType::f64)); }).find("dtypes differ"), std::string::npos);
  EXPECT_NE(error_of([&] { conv2d(x.to(DType::i32), w.to(DType::i32)); }).find("floating-point"),
            std::string::npos);
  msg = error_of([&] { conv1d(Tensor::zeros({2, 4, 9}), Tensor::zeros({3, 2, 3})); });
  EXPECT_NE(msg.find("conv1d (input [2, 4, 9], weight [3, 2, 3])"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { conv1d(x, w); }).find("conv1d: input must be 3-D"), std::string::npos);
}

// The fused inference op against the same ops in turn: every part of the epilogue, each conv
// path's shape class, f32 and f64; then the fallbacks (a gradient to record: the ops in turn,
// whose gradients flow) and bad arguments.
TEST(Conv2dAffine, MatchesTheOpsInTurn) {
  struct Case {
    Shape x, w;
    Int2 padding;
  };
  const std::vector<Case> cases = {{{2, 4, 7, 7}, {13, 4, 3, 3}, {1, 1}},   // implicit GEMM
                                   {{2, 5, 3, 11}, {17, 5, 1, 1}, {0, 0}},  // columns
                                   {{1, 2, 3, 40}, {70, 2, 1, 1}, {0, 0}}}; // GEMM per image
  for (DType dt : {DType::f32, DType::f64})
    for (const Case& c : cases) {
      const Tensor x = rand_input(c.x, 1).to(dt), w = rand_input(c.w, 2).to(dt);
      const int64_t C = c.w[0];
      const Tensor scale = rand_input({C}, 3).to(dt), shift = rand_input({C}, 4).to(dt);
      const Tensor plain = conv2d(x, w, Tensor(), {1, 1}, c.padding);
      const Tensor residual = rand_input(plain.shape(), 5).to(dt);
      const Shape per_channel{1, C, 1, 1};
      for (bool with_residual : {false, true})
        for (bool with_relu : {false, true}) {
          Tensor want = add(mul(plain, scale.view(per_channel)), shift.view(per_channel));
          if (with_residual) want = add(want, residual);
          if (with_relu) want = relu(want);
          const Tensor got = conv2d_affine(x, w, scale, shift, with_residual ? residual : Tensor(),
                                           with_relu, {1, 1}, c.padding);
          const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
          EXPECT_TRUE(all_close(got, want, tol, tol)) << shape_str(c.x) << " " << with_residual << with_relu;
        }
      // Scale and shift each optional.
      EXPECT_TRUE(all_close(conv2d_affine(x, w, Tensor(), Tensor(), Tensor(), false, {1, 1}, c.padding),
                            plain, 1e-12, 1e-12));
    }
}

TEST(Conv2dAffine, RecordsTheOpsWhenAGradientIsNeeded) {
  const Tensor x = rand_input({2, 3, 5, 5}, 1).set_requires_grad(true);
  const Tensor w = rand_input({4, 3, 3, 3}, 2);
  const Tensor scale = rand_input({4}, 3), shift = rand_input({4}, 4);
  sum(conv2d_affine(x, w, scale, shift, Tensor(), true, {1, 1}, {1, 1})).backward();
  ASSERT_TRUE(x.grad().defined());
  const Tensor x2 = x.detach().clone().set_requires_grad(true);
  const Shape per_channel{1, 4, 1, 1};
  sum(relu(add(mul(conv2d(x2, w, Tensor(), {1, 1}, {1, 1}), scale.view(per_channel)),
               shift.view(per_channel)))).backward();
  EXPECT_TRUE(all_close(x.grad(), x2.grad(), 1e-6, 1e-6));
}

TEST(Conv2dAffine, BadArgumentsRaise) {
  const Tensor x = rand_input({1, 2, 4, 4}, 1), w = rand_input({3, 2, 3, 3}, 2);
  EXPECT_ERROR_HAS(conv2d_affine(x, w, rand_input({2}, 3), Tensor(), Tensor(), false),
                   "scale and shift must be [3]");
  EXPECT_ERROR_HAS(conv2d_affine(x, w, Tensor(), Tensor(), rand_input({1, 3, 4, 4}, 4), false),
                   "the residual must have the output's shape [1, 3, 2, 2]");
}
