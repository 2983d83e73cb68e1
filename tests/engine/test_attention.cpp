// scaled_dot_product_attention: forward and gradients against PyTorch, gradcheck per
// configuration class (tile edges included), strided inputs, thread counts, bad arguments.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

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

// The same values with every other element of the last dim skipped in memory: rows are no
// longer contiguous, so the op must copy.
Tensor strided_copy(const Tensor& x) {
  Shape big = x.shape();
  big.back() *= 2;
  Tensor v = Tensor::zeros(big, x.dtype()).slice(-1, 0, big.back(), 2);
  v.copy_(x);
  return v;
}

// The same values with rows and columns swapped in memory.
Tensor transposed_copy(const Tensor& x) { return x.transpose(-1, -2).contiguous().transpose(-1, -2); }

// The same values laid out as [..., L, heads, E] and viewed back: rows stay contiguous but sit
// heads * E apart, as q, k, v cut out of a fused projection are (read in place).
Tensor heads_interleaved(const Tensor& x) {
  if (x.dim() < 3) return x.clone();
  return x.transpose(-2, -3).contiguous().transpose(-2, -3);
}

Tensor leaf(const Tensor& t) { return t.clone().set_requires_grad(true); }

}  // namespace

TEST(Attention, MatchesPyTorch) {
  Fixture f("ops_attention");
  const auto list = nlohmann::json::parse(f.metadata().at("cases"));
  ASSERT_GE(list.size(), 17u);
  for (const auto& c : list) {
    const std::string key = "sdpa." + c["name"].get<std::string>();
    SCOPED_TRACE(key);
    const Tensor q = f.get(key + ".q"), k = f.get(key + ".k"), v = f.get(key + ".v");
    const Tensor mask = c["mask"] == "none" ? Tensor() : f.get(key + ".mask");
    if (mask.defined()) {
      EXPECT_EQ(mask.dtype(), c["mask"] == "bool" ? DType::u8 : DType::f32);
    }
    const bool causal = c["causal"];
    const std::optional<double> scale =
        c["scale"].is_null() ? std::nullopt : std::optional<double>(c["scale"].get<double>());
    const Tensor expected = f.get(key + ".out");
    EXPECT_TRUE(all_close(scaled_dot_product_attention(q, k, v, mask, causal, scale), expected,
                          1e-5, 1e-4));
    EXPECT_TRUE(all_close(scaled_dot_product_attention(heads_interleaved(q), strided_copy(k),
                                                       transposed_copy(v), mask, causal, scale),
                          expected, 1e-5, 1e-4));
    Tensor ql = leaf(q), kl = leaf(k), vl = leaf(v);
    scaled_dot_product_attention(ql, kl, vl, mask, causal, scale).backward(f.get(key + ".g"));
    EXPECT_TRUE(all_close(ql.grad(), f.get(key + ".gq"), 1e-5, 1e-4));
    EXPECT_TRUE(all_close(kl.grad(), f.get(key + ".gk"), 1e-5, 1e-4));
    EXPECT_TRUE(all_close(vl.grad(), f.get(key + ".gv"), 1e-5, 1e-4));
  }
}

// A row whose every key is masked out gives zeros and passes no gradient, as PyTorch 2.15
// (which made the fixtures) does; older versions gave NaN.
TEST(Attention, FullyMaskedRowsGiveZeros) {
  const Tensor q = rand_input({2, 3, 4}, 1), k = rand_input({2, 5, 4}, 2), v = rand_input({2, 5, 3}, 3);
  Tensor keep = Tensor::ones({3, 5}, DType::u8);
  keep.select(0, 1).fill_(0);
  Tensor out = scaled_dot_product_attention(q, k, v, keep);
  EXPECT_TRUE(all_close(out.select(1, 1), Tensor::zeros({2, 3}, DType::f64), 0, 0));
  sum(out).backward();
  EXPECT_TRUE(all_close(q.grad().select(1, 1), Tensor::zeros({2, 4}, DType::f64), 0, 0));
  for (double x : q.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(x));
  Tensor additive = Tensor::zeros({3, 5}, DType::f64);
  additive.select(0, 2).fill_(-INFINITY);
  Tensor out2 = scaled_dot_product_attention(q.detach(), k.detach(), v.detach(), additive);
  EXPECT_TRUE(all_close(out2.select(1, 2), Tensor::zeros({2, 3}, DType::f64), 0, 0));
}

TEST(Attention, Gradcheck) {
  using Inputs = std::vector<Tensor>;
  auto check = [](const char* what, std::vector<Tensor> in, auto op) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(gradcheck([&](const Inputs& t) { return op(t[0], t[1], t[2]); }, std::move(in)));
  };
  auto qkv = [](Shape qs, Shape ks, Shape vs) {
    return std::vector<Tensor>{rand_input(qs, 11), rand_input(ks, 12), rand_input(vs, 13)};
  };
  check("plain, Lq != Lk, Ev != E", qkv({2, 3, 4}, {2, 5, 4}, {2, 5, 2}),
        [](auto q, auto k, auto v) { return scaled_dot_product_attention(q, k, v); });
  check("causal, Lq > Lk", qkv({1, 2, 6, 3}, {1, 2, 4, 3}, {1, 2, 4, 3}),
        [](auto q, auto k, auto v) { return scaled_dot_product_attention(q, k, v, Tensor(), true); });
  check("causal, Lq < Lk, scale", qkv({2, 3, 3}, {2, 5, 3}, {2, 5, 2}), [](auto q, auto k, auto v) {
    return scaled_dot_product_attention(q, k, v, Tensor(), true, 0.7);
  });
  Tensor keep = Tensor::ones({2, 1, 4, 5}, DType::u8);
  keep.select(0, 0).select(1, 2).fill_(0);  // one fully masked row
  keep.select(0, 1).select(2, 3).fill_(0);  // one masked key
  check("u8 mask with a fully masked row", qkv({2, 2, 4, 3}, {2, 2, 5, 3}, {2, 2, 5, 2}),
        [&](auto q, auto k, auto v) { return scaled_dot_product_attention(q, k, v, keep); });
  Tensor additive = rand_input({4, 5}, 14).detach();
  additive.select(0, 1).select(0, 0).fill_(-INFINITY);
  check("float mask", qkv({2, 4, 3}, {2, 5, 3}, {2, 5, 3}),
        [&](auto q, auto k, auto v) { return scaled_dot_product_attention(q, k, v, additive); });
  check("broadcast leading dims", qkv({2, 1, 3, 3}, {3, 4, 3}, {4, 2}),
        [](auto q, auto k, auto v) { return scaled_dot_product_attention(q, k, v); });
  // Crosses the 64-row query tiles and the 128-key tiles, with both masks active.
  Tensor long_keep = gt(rand_input({70, 130}, 15).detach(), Tensor::scalar(-0.6, DType::f64)).to(DType::u8);
  check("across tiles, causal and masked", qkv({1, 70, 2}, {1, 130, 2}, {1, 130, 2}),
        [&](auto q, auto k, auto v) { return scaled_dot_product_attention(q, k, v, long_keep, true); });
}

// Threads split (batch, tile) pairs; every split must give the same values.
TEST(Attention, ThreadCountsAgree) {
  const int before = num_threads();
  const Tensor q = rand_input({3, 70, 4}, 1).detach(), k = rand_input({3, 140, 4}, 2).detach(),
               v = rand_input({3, 140, 5}, 3).detach();
  auto run = [&] {
    Tensor ql = leaf(q), kl = leaf(k), vl = leaf(v);
    Tensor out = scaled_dot_product_attention(ql, kl, vl, Tensor(), true);
    sum(mul(out, out)).backward();
    return std::vector<Tensor>{out, ql.grad(), kl.grad(), vl.grad()};
  };
  set_num_threads(1);
  const auto one = run();
  for (int n : {2, 5}) {
    set_num_threads(n);
    const auto many = run();
    for (size_t i = 0; i < one.size(); ++i)
      EXPECT_TRUE(all_close(many[i], one[i], 1e-13, 1e-13)) << n << " threads, tensor " << i;
  }
  set_num_threads(before);
}

TEST(Attention, HalfInputsComputeInF32) {
  const Tensor q = rand_input({2, 5, 8}, 1).detach().to(DType::f32), k = rand_input({2, 6, 8}, 2).detach().to(DType::f32),
               v = rand_input({2, 6, 4}, 3).detach().to(DType::f32);
  Tensor additive = Tensor::zeros({5, 6}, DType::bf16);
  Tensor out = scaled_dot_product_attention(q.to(DType::bf16), k.to(DType::bf16), v.to(DType::bf16), additive);
  EXPECT_EQ(out.dtype(), DType::bf16);
  EXPECT_TRUE(all_close(out.to(DType::f32), scaled_dot_product_attention(q, k, v), 0.03, 0.03));
}

// bf16 without a mask and with nothing to record runs the bf16 kernel on the operands as they
// are (heads cut out of a fused projection, a broadcast batch dim, causal or not): the f32
// result on the same values within the bf16 rounding of the probabilities and the output.
// With a gradient to record it goes through f32 and the gradients reach the bf16 inputs.
TEST(Attention, Bf16InferenceMatchesF32OnTheSameValues) {
  for (bool causal : {false, true}) {
    const Tensor q = heads_interleaved(rand_input({2, 3, 197, 64}, 4).detach().to(DType::bf16));
    const Tensor k = heads_interleaved(rand_input({2, 3, 197, 64}, 5).detach().to(DType::bf16));
    const Tensor v = rand_input({1, 3, 197, 32}, 6).detach().to(DType::bf16).expand({2, 3, 197, 32});
    Tensor out;
    {
      NoGrad no_grad;
      out = scaled_dot_product_attention(q, k, v, Tensor(), causal);
    }
    EXPECT_EQ(out.dtype(), DType::bf16);
    const Tensor want = scaled_dot_product_attention(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32),
                                                     Tensor(), causal);
    // |v| <= 1: the probabilities' rounding costs at most 2^-9, the output's 2^-9 of itself.
    EXPECT_TRUE(all_close(out.to(DType::f32), want, 6e-3, 6e-3)) << "causal " << causal;
  }
  Tensor q = rand_input({2, 5, 8}, 1).detach().to(DType::bf16).set_requires_grad();
  const Tensor k = rand_input({2, 6, 8}, 2).detach().to(DType::bf16), v = rand_input({2, 6, 4}, 3).detach().to(DType::bf16);
  sum(scaled_dot_product_attention(q, k, v).to(DType::f32)).backward();
  ASSERT_TRUE(q.grad().defined());
  EXPECT_EQ(q.grad().dtype(), DType::bf16);
}

TEST(Attention, BadArgumentsRaise) {
  const Tensor q = Tensor::zeros({2, 3, 5, 8}), k = Tensor::zeros({2, 3, 7, 8}), v = Tensor::zeros({2, 3, 7, 6});
  auto msg = error_of([&] { scaled_dot_product_attention(q, Tensor::zeros({2, 3, 7, 4}), v); });
  EXPECT_NE(msg.find("scaled_dot_product_attention: q [2, 3, 5, 8], k [2, 3, 7, 4] and v [2, 3, 7, 6] do not fit"),
            std::string::npos) << msg;
  msg = error_of([&] { scaled_dot_product_attention(q, k, Tensor::zeros({2, 3, 6, 6})); });
  EXPECT_NE(msg.find("do not fit"), std::string::npos) << msg;
  msg = error_of([&] { scaled_dot_product_attention(q, Tensor::zeros({4, 3, 7, 8}), v); });
  EXPECT_NE(msg.find("scaled_dot_product_attention"), std::string::npos) << msg;
  msg = error_of([&] { scaled_dot_product_attention(q, k, v, Tensor::ones({5, 6}, DType::u8)); });
  EXPECT_NE(msg.find("scaled_dot_product_attention: mask [5, 6] is not broadcastable to the scores [2, 3, 5, 7]"),
            std::string::npos) << msg;
  msg = error_of([&] { scaled_dot_product_attention(q, k, v, Tensor::ones({2, 2, 3, 5, 7}, DType::u8)); });
  EXPECT_NE(msg.find("is not broadcastable"), std::string::npos) << msg;
  EXPECT_EQ(error_of([&] { scaled_dot_product_attention(q, k, v, Tensor::ones({3, 1, 7}, DType::u8)); }), "");
  msg = error_of([&] { scaled_dot_product_attention(q, k, v, Tensor::zeros({5, 7}, DType::f64)); });
  EXPECT_NE(msg.find("mask must be u8 (1 = attend) or of the query's dtype f32, got f64"), std::string::npos) << msg;
  msg = error_of([&] { scaled_dot_product_attention(q, k, v, Tensor::zeros({5, 7}).set_requires_grad(true)); });
  EXPECT_NE(msg.find("no gradient for the mask"), std::string::npos) << msg;
  msg = error_of([&] { scaled_dot_product_attention(Tensor::zeros({8}), k, v); });
  EXPECT_NE(msg.find("need at least 2 dims"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { scaled_dot_product_attention(q, k.to(DType::f64), v); }).find("dtypes differ"),
            std::string::npos);
}
