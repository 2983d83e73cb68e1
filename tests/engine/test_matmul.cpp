// matmul and linear against PyTorch (tests/reference/ops_matmul.py): every rank combination
// of torch.matmul, broadcast batch dims, transposed operands read in place, odd sizes and one
// big enough for the kernel's blocking; gradients by finite differences in f64.
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
  static const Fixture f("ops_matmul");
  return f;
}
Tensor F(const std::string& key) { return fx().get(key); }

Tensor leaf(const std::string& key) {
  Tensor t = F(key).clone().detach();
  t.set_requires_grad(true);
  return t;
}

using Args = std::vector<Tensor>;

const char* kCases[] = {"dot",       "vec_mat",   "mat_vec", "mat_mat",   "big",      "batch_mat",
                        "mat_batch", "bcast",     "vec_batch", "batch_vec", "one"};

}  // namespace

TEST(Matmul, EveryRankCombinationMatchesTorch) {
  for (const char* c : kCases) {
    const std::string k = c;
    Tensor a = F(k + ".a"), b = F(k + ".b"), expected = F(k + ".out");
    Tensor got = matmul(a, b);
    EXPECT_EQ(got.shape(), expected.shape()) << k;  // dot gives a scalar, as torch
    EXPECT_TRUE(all_close(got, expected, 1e-5, 1e-5)) << k;
    EXPECT_TRUE(all_close(matmul(a.to(DType::f64), b.to(DType::f64)), expected, 1e-5, 1e-5)) << k << " f64";
  }
}

TEST(Matmul, TransposedOperandsMatchTorch) {
  Tensor at = F("trans.at"), bt = F("trans.bt");
  ASSERT_FALSE(at.t().is_contiguous());
  EXPECT_TRUE(all_close(matmul(at.t(), F("trans.b")), F("trans.tn"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(matmul(F("trans.a"), bt.t()), F("trans.nt"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(matmul(at.t(), bt.t()), F("trans.tt"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(matmul(F("btrans.at").transpose(-1, -2), F("btrans.bt").transpose(-1, -2)),
                        F("btrans.out"), 1e-5, 1e-5));
  // A view that is neither row- nor column-major (a strided slice) is copied first.
  Tensor a = F("big.a"), b = F("big.b");
  Tensor strided = a.slice(1, 0, 70, 2);  // [65, 35], column stride 2
  EXPECT_TRUE(all_close(matmul(strided, b.slice(0, 0, 70, 2)),
                        matmul(strided.contiguous(), b.slice(0, 0, 70, 2).contiguous()), 1e-6, 1e-6));
}

TEST(Matmul, HalfOperandsComputeInF32) {
  Tensor a = F("mat_mat.a").to(DType::bf16), b = F("mat_mat.b").to(DType::bf16);
  Tensor got = matmul(a, b);
  EXPECT_EQ(got.dtype(), DType::bf16);
  EXPECT_TRUE(all_close(got, matmul(a.to(DType::f32), b.to(DType::f32)).to(DType::bf16), 0, 0));
}

TEST(Matmul, EmptyDims) {
  Tensor z = matmul(Tensor::ones({2, 0}), Tensor::ones({0, 3}));
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(6, 0.0f));  // a sum of nothing is 0
  EXPECT_EQ(matmul(Tensor::ones({0, 3}), Tensor::ones({3, 2})).shape(), (Shape{0, 2}));
  EXPECT_EQ(matmul(Tensor::ones({2, 0, 3}), Tensor::ones({3, 2})).shape(), (Shape{2, 0, 2}));
}

TEST(Matmul, LinearMatchesTorch) {
  Tensor x = leaf("linear.x"), W = leaf("linear.W"), bias = leaf("linear.bias");
  Tensor out = linear(x, W, bias);
  EXPECT_TRUE(all_close(out, F("linear.out"), 1e-5, 1e-5));
  sum(mul(out, F("linear.w"))).backward();
  EXPECT_TRUE(all_close(x.grad(), F("linear.grad_x"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(W.grad(), F("linear.grad_W"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(bias.grad(), F("linear.grad_bias"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(linear(F("linear.x"), F("linear.W")), F("linear.out_nobias"), 1e-5, 1e-5));
  // A single vector in, a single vector out.
  Tensor v = F("linear.x").select(0, 0).select(0, 0);
  EXPECT_TRUE(all_close(linear(v, F("linear.W"), F("linear.bias")), F("linear.vec_out"), 1e-5, 1e-5));
  // A transposed weight (as when one matrix is shared between two layers) is read in place.
  Tensor Wt = F("linear.W").t().contiguous().t();
  EXPECT_TRUE(all_close(linear(F("linear.x"), Wt, F("linear.bias")), F("linear.out"), 1e-5, 1e-5));
}

TEST(Matmul, Gradients) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3}, {3}},       {{3}, {3, 2}},       {{2, 3}, {3}},         {{2, 3}, {3, 4}},
      {{2, 2, 3}, {3, 2}}, {{2, 3}, {2, 3, 2}}, {{2, 1, 2, 3}, {3, 3, 2}}, {{3}, {2, 3, 2}},
      {{2, 2, 3}, {3}},
  };
  int seed = 300;
  for (const auto& [sa, sb] : shapes) {
    Tensor a = rand_input(sa, seed++), b = rand_input(sb, seed++);
    EXPECT_TRUE(gradcheck([](const Args& v) { return matmul(v[0], v[1]); }, {a, b}))
        << shape_str(sa) << " @ " << shape_str(sb);
  }
  // Transposed views on both sides, and a batched transpose.
  Tensor a = rand_input({3, 2}, 320), b = rand_input({4, 3}, 321);
  EXPECT_TRUE(gradcheck([](const Args& v) { return matmul(v[0].t(), v[1].t()); }, {a, b}));
  Tensor c = rand_input({2, 3, 2}, 322), d = rand_input({2, 4, 3}, 323);
  EXPECT_TRUE(gradcheck([](const Args& v) { return matmul(v[0].transpose(1, 2), v[1].transpose(-1, -2)); },
                        {c, d}));
}

TEST(Matmul, LinearGradients) {
  Tensor x = rand_input({2, 3, 4}, 330), W = rand_input({2, 4}, 331), b = rand_input({2}, 332);
  EXPECT_TRUE(gradcheck([](const Args& v) { return linear(v[0], v[1], v[2]); }, {x, W, b}));
  EXPECT_TRUE(gradcheck([](const Args& v) { return linear(v[0], v[1]); }, {x, W}));
  EXPECT_TRUE(gradcheck([](const Args& v) { return linear(v[0], v[1], v[2]); },
                        {rand_input({4}, 333), W, b}));
}

// Training with a bias runs one fused "linear" node (the bias added by the GEMM as it writes):
// its output and the gradients of x, weight and bias are bit for bit those of matmul(x, W^T) +
// bias for a 2-D x (the same GEMMs), at a size that crosses the GEMM's blocks, with any subset
// of the inputs trained. (A 3-D x is one GEMM here and batched GEMMs there: equal to rounding.)
TEST(Matmul, LinearWithGradientIsTheOpsBitForBit) {
  const Tensor x0 = rand_input({90, 1100}, 340).detach().to(DType::f32),
               w0 = rand_input({40, 1100}, 341).detach().to(DType::f32),
               b0 = rand_input({40}, 342).detach().to(DType::f32),
               seed = rand_input({90, 40}, 343).detach().to(DType::f32);
  for (int trained = 1; trained < 8; ++trained) {
    SCOPED_TRACE(trained);
    auto leaves = [&] {
      std::vector<Tensor> v{x0.clone(), w0.clone(), b0.clone()};
      for (int i = 0; i < 3; ++i) v[size_t(i)].set_requires_grad((trained >> i) & 1);
      return v;
    };
    std::vector<Tensor> fused = leaves(), ops = leaves();
    const Tensor y_fused = linear(fused[0], fused[1], fused[2]);
    EXPECT_EQ(y_fused.grad_fn()->name, "linear");
    const Tensor y_ops = add(matmul(ops[0], ops[1].t()), ops[2]);
    EXPECT_EQ(y_fused.to_vector<float>(), y_ops.to_vector<float>());
    sum(mul(y_fused, seed)).backward();
    sum(mul(y_ops, seed)).backward();
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(fused[size_t(i)].grad().defined(), bool((trained >> i) & 1)) << i;
      if (fused[size_t(i)].grad().defined()) {
        EXPECT_EQ(fused[size_t(i)].grad().to_vector<float>(), ops[size_t(i)].grad().to_vector<float>()) << i;
      }
    }
  }
  const Tensor x3 = rand_input({3, 30, 1100}, 344).detach().to(DType::f32);
  EXPECT_TRUE(all_close(linear(x3, w0.clone().set_requires_grad(true), b0),
                        add(matmul(x3, w0.t()), b0), 1e-5, 1e-5));
}

TEST(Matmul, Errors) {
  Tensor a = Tensor::zeros({2, 3});
  EXPECT_ERROR_HAS(matmul(a, a), "matmul: shapes [2, 3] and [2, 3] cannot be multiplied (3 vs 2)");
  EXPECT_ERROR_HAS(matmul(Tensor::zeros({4}), Tensor::zeros({3})), "matmul: shapes [4] and [3] cannot be multiplied (4 vs 3)");
  EXPECT_ERROR_HAS(matmul(Tensor::scalar(1), a), "matmul: both operands need at least one dim, got [] and [2, 3]");
  EXPECT_ERROR_HAS(matmul(a, a.t().to(DType::f64)), "matmul: dtypes differ");
  EXPECT_ERROR_HAS(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 2})),
                   "matmul: shapes [2] and [3] cannot be broadcast together");
  EXPECT_ERROR_HAS(matmul(Tensor::zeros({2}, DType::i64), Tensor::zeros({2}, DType::i64)),
                   "matmul: expected a floating-point tensor, got i64");
  EXPECT_ERROR_HAS(linear(a, Tensor::zeros({4, 2})), "linear: input [2, 3] does not match weight [4, 2]");
  EXPECT_ERROR_HAS(linear(a, Tensor::zeros({3})), "linear: weight must be 2-D [out, in], got [3]");
  EXPECT_ERROR_HAS(linear(a, Tensor::zeros({4, 3}), Tensor::zeros({3})), "linear: bias [3] does not match weight [4, 3]");
}
