// Reductions against PyTorch (tests/reference/ops_reduce.py): sum, mean, max (amax), min
// (amin), var and argmax over every set of dims of a 3-D tensor, contiguous and permuted, with
// and without keepdim; gradients by finite differences in f64.
#include <gtest/gtest.h>

#include "engine/ops.h"
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

const Fixture& fx() {
  static const Fixture f("ops_reduce");
  return f;
}
Tensor F(const std::string& key) { return fx().get(key); }

using Args = std::vector<Tensor>;

const std::vector<std::pair<std::string, std::vector<int64_t>>> kDimSets = {
    {"all", {}},      {"d0", {0}},       {"d1", {1}},       {"d2", {2}},         {"dm1", {-1}},
    {"d02", {0, 2}},  {"d12", {1, 2}},   {"d01", {0, 1}},   {"d012", {0, 1, 2}},
};

// The two inputs of the fixture: x itself and a permuted (non-contiguous) [3, 4, 5] view.
std::vector<std::pair<std::string, Tensor>> inputs() {
  Tensor p = F("xp").permute({1, 2, 0});
  EXPECT_FALSE(p.is_contiguous());
  return {{"x", F("x")}, {"p", p}};
}

}  // namespace

TEST(Reduce, EveryDimSetMatchesTorch) {
  for (const auto& [src, x] : inputs()) {
    for (const auto& [dname, dims] : kDimSets) {
      for (bool keep : {false, true}) {
        const std::string k = src + "." + dname + "." + (keep ? "keep" : "drop") + ".";
        EXPECT_TRUE(all_close(sum(x, dims, keep), F(k + "sum"))) << k;
        EXPECT_TRUE(all_close(mean(x, dims, keep), F(k + "mean"))) << k;
        EXPECT_TRUE(all_close(max(x, dims, keep), F(k + "max"), 0, 0)) << k;
        EXPECT_TRUE(all_close(min(x, dims, keep), F(k + "min"), 0, 0)) << k;
        EXPECT_TRUE(all_close(var(x, dims, 1, keep), F(k + "var"))) << k;
        EXPECT_TRUE(all_close(var(x, dims, 0, keep), F(k + "var0"))) << k;
        // The f64 kernels agree to f32 precision.
        Tensor xd = x.to(DType::f64);
        EXPECT_TRUE(all_close(sum(xd, dims, keep), F(k + "sum"))) << k << " f64";
        EXPECT_TRUE(all_close(var(xd, dims, 1, keep), F(k + "var"))) << k << " f64";
      }
    }
  }
}

TEST(Reduce, ArgmaxMatchesTorch) {
  for (const auto& [src, x] : inputs()) {
    for (int64_t dim : {0, 1, 2, -1}) {
      for (bool keep : {false, true}) {
        const std::string k = src + ".argmax" + std::to_string(dim) + "." + (keep ? "keep" : "drop");
        Tensor got = argmax(x, dim, keep);
        EXPECT_EQ(got.dtype(), DType::i64);
        EXPECT_TRUE(all_close(got, F(k), 0, 0)) << k;
        EXPECT_TRUE(all_close(argmax(x.to(DType::f64), dim, keep), F(k), 0, 0)) << k << " f64";
      }
    }
  }
}

TEST(Reduce, OddAndLongRows) {
  Tensor odd = F("odd.x");  // 33 columns: the 8-wide inner loop has a tail of 1
  EXPECT_TRUE(all_close(sum(odd, {1}), F("odd.sum1")));
  EXPECT_TRUE(all_close(sum(odd, {0}), F("odd.sum0")));
  EXPECT_TRUE(all_close(mean(odd, {1}), F("odd.mean1")));
  EXPECT_TRUE(all_close(var(odd, {1}), F("odd.var1")));
  // 5000 values near 3: the f32 sum stays within a few units in the 7th digit of the exact one.
  Tensor lng = F("long.x");
  EXPECT_TRUE(all_close(sum(lng, {1}), F("long.sum_f64"), 0, 2e-6));
  EXPECT_TRUE(all_close(sum(lng.to(DType::f64), {1}), F("long.sum_f64"), 0, 1e-12));
  EXPECT_TRUE(all_close(var(lng, {1}), F("long.var"), 0, 1e-5));
}

TEST(Reduce, TiesAndNaN) {
  Tensor x = F("ties.x").clone();
  x.set_requires_grad(true);
  EXPECT_TRUE(all_close(argmax(x, 1), F("ties.argmax"), 0, 0));  // the first of the tied
  sum(mul(max(x, {1}), F("ties.w"))).backward();
  EXPECT_TRUE(all_close(x.grad(), F("ties.max_grad"), 1e-7, 0));  // shared evenly
  x.zero_grad();
  sum(mul(min(x, {1}), F("ties.w"))).backward();
  EXPECT_TRUE(all_close(x.grad(), F("ties.min_grad"), 1e-7, 0));
  Tensor n = F("nan.x");
  EXPECT_TRUE(all_close(max(n, {1}), F("nan.max"), 0, 0));
  EXPECT_TRUE(all_close(min(n, {1}), F("nan.min"), 0, 0));
  EXPECT_TRUE(all_close(argmax(n, 1), F("nan.argmax"), 0, 0));
}

TEST(Reduce, HalfInputsReduceInF32) {
  Tensor x = F("x").to(DType::bf16);
  Tensor s = sum(x, {1});
  EXPECT_EQ(s.dtype(), DType::bf16);
  EXPECT_TRUE(all_close(s, sum(x.to(DType::f32), {1}).to(DType::bf16), 0, 0));
  EXPECT_TRUE(all_close(max(x.to(DType::f16), {0, 2}, true), max(x.to(DType::f32), {0, 2}, true), 0, 0));
}

TEST(Reduce, ScalarsAndEmptyDims) {
  Tensor s = Tensor::scalar(3.5);
  EXPECT_EQ(sum(s).item(), 3.5);
  EXPECT_EQ(sum(s, {0}).item(), 3.5);  // a 0-D tensor accepts dim 0 and -1, as in PyTorch
  EXPECT_EQ(max(s, {-1}, true).shape(), Shape{});
  EXPECT_EQ(mean(s, {0}).item(), 3.5);
  Tensor e = Tensor::zeros({2, 0});
  EXPECT_EQ(sum(e, {1}).to_vector<float>(), (std::vector<float>{0, 0}));
  EXPECT_EQ(sum(e).item(), 0.0);
}

TEST(Reduce, Gradients) {
  Tensor x = rand_input({2, 3, 4}, 200);
  for (const auto& [dname, dims] : kDimSets) {
    for (bool keep : {false, true}) {
      const std::string k = dname + (keep ? " keep" : " drop");
      EXPECT_TRUE(gradcheck([&](const Args& v) { return sum(v[0], dims, keep); }, {x})) << k;
      EXPECT_TRUE(gradcheck([&](const Args& v) { return mean(v[0], dims, keep); }, {x})) << k;
      EXPECT_TRUE(gradcheck([&](const Args& v) { return max(v[0], dims, keep); }, {x})) << k;
      EXPECT_TRUE(gradcheck([&](const Args& v) { return min(v[0], dims, keep); }, {x})) << k;
      EXPECT_TRUE(gradcheck([&](const Args& v) { return var(v[0], dims, 1, keep); }, {x})) << k;
      EXPECT_TRUE(gradcheck([&](const Args& v) { return var(v[0], dims, 0, keep); }, {x})) << k;
    }
  }
  // Through a permuted view, dims that are not adjacent in memory.
  EXPECT_TRUE(gradcheck([](const Args& v) { return sum(v[0].permute({2, 0, 1}), {0, 2}); }, {x}));
  EXPECT_TRUE(gradcheck([](const Args& v) { return var(v[0].transpose(0, 2), {1}, 1, true); }, {x}));
  EXPECT_TRUE(gradcheck([](const Args& v) { return max(v[0].permute({1, 2, 0}), {-1}); }, {x}));
  // sum_to_shape, the backward of broadcasting.
  EXPECT_TRUE(gradcheck([](const Args& v) { return sum_to_shape(v[0], {3, 1}); }, {x}));
}

TEST(Reduce, Errors) {
  Tensor x = Tensor::zeros({3, 4, 5});
  EXPECT_ERROR_HAS(sum(x, {3}), "sum: dim 3 is out of range for a tensor of shape [3, 4, 5]");
  EXPECT_ERROR_HAS(mean(x, {-4}), "mean: dim -4 is out of range for a tensor of shape [3, 4, 5]");
  EXPECT_ERROR_HAS(max(x, {1, -2}), "max: a dim is repeated");
  EXPECT_ERROR_HAS(var(x, {0}, 3), "var: 3 values with correction 3 leave no degrees of freedom");
  EXPECT_ERROR_HAS(argmax(x, 5), "argmax: dim 5 is out of range");
  EXPECT_ERROR_HAS(sum(Tensor::zeros({2}, DType::i64)), "sum: expected a floating-point tensor, got i64");
  EXPECT_ERROR_HAS(max(Tensor::zeros({2, 0}), {1}), "max: cannot reduce over an empty dim");
  EXPECT_ERROR_HAS(argmax(Tensor::zeros({0, 2}), 0), "argmax: cannot reduce over an empty dim");
  EXPECT_ERROR_HAS(mean(Tensor::zeros({0, 2}), {0}), "mean: cannot average over an empty dim");
  EXPECT_ERROR_HAS(sum_to_shape(x, {2, 5}), "sum_to_shape: cannot reduce [3, 4, 5] to [2, 5]");
}
