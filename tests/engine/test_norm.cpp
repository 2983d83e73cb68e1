// layer_norm, batch_norm and l2_normalize against PyTorch (tests/reference/ops_norm.py), their
// gradients by finite differences and against PyTorch's, and the errors they give.
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

Tensor F(const std::string& key) {
  static const Fixture f("ops_norm");
  return f.get(key);
}

Tensor leaf(const Tensor& t) {
  Tensor l = t.clone().detach();
  l.set_requires_grad(true);
  return l;
}

}  // namespace

// ---------------------------------------------------------------- layer_norm

TEST(LayerNorm, MatchesTorch) {
  Tensor x = F("ln.x");
  EXPECT_TRUE(
      all_close(layer_norm(x, {8}, F("ln.w8"), F("ln.b8")), F("ln.last.affine"), 1e-5, 1e-5));
  EXPECT_TRUE(
      all_close(layer_norm(x, {3, 8}, F("ln.w38"), F("ln.b38")), F("ln.last2.affine"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(layer_norm(x, {8}, Tensor(), Tensor(), 1e-3), F("ln.last.plain.eps1e-3"),
                        1e-5, 1e-5));
  EXPECT_TRUE(all_close(layer_norm(x, {8}, F("ln.w8")), F("ln.last.weight_only"), 1e-5, 1e-5));
  Tensor xp = x.permute({2, 1, 0});
  ASSERT_FALSE(xp.is_contiguous());
  EXPECT_TRUE(
      all_close(layer_norm(xp, {4}, F("ln.w4"), F("ln.b4")), F("ln.permuted.affine"), 1e-5, 1e-5));
}

// bf16/f16 input: normalized in f32 and rounded once; for inference the CPU kernel widens each
// row itself, recorded it goes through f32 ops: the same bits either way, every affine form,
// a non-contiguous input too.
TEST(LayerNorm, HalfInputNormalizedInF32AndRoundedOnce) {
  const Tensor x = F("ln.x");
  for (DType dt : {DType::bf16, DType::f16}) {
    const Tensor xh = x.to(dt), xp = xh.permute({2, 1, 0});
    const Tensor w = F("ln.w8").to(dt), b = F("ln.b8").to(dt);
    auto widened = [&](const Tensor& in, const Tensor& wt, const Tensor& bt) {
      return layer_norm(in.to(DType::f32), {in.size(-1)}, wt.defined() ? wt.to(DType::f32) : wt,
                        bt.defined() ? bt.to(DType::f32) : bt)
          .to(dt);
    };
    for (const auto& [wt, bt] : {std::pair{w, b}, std::pair{w, Tensor()}, std::pair{Tensor(), b},
                                 std::pair{Tensor(), Tensor()}}) {
      const Tensor got = layer_norm(xh, {8}, wt, bt);
      EXPECT_EQ(got.dtype(), dt);
      EXPECT_TRUE(all_close(got, widened(xh, wt, bt), 0, 0)) << dtype_name(dt);
    }
    const Tensor w4 = F("ln.w4").to(dt), b4 = F("ln.b4").to(dt);
    ASSERT_FALSE(xp.is_contiguous());
    EXPECT_TRUE(all_close(layer_norm(xp, {4}, w4, b4), widened(xp, w4, b4), 0, 0));
    Tensor leaf_x = xh.clone().detach();
    leaf_x.set_requires_grad(true);
    const Tensor recorded = layer_norm(leaf_x, {8}, w, b);
    EXPECT_TRUE(recorded.requires_grad());
    EXPECT_TRUE(all_close(recorded.detach(), widened(xh, w, b), 0, 0)) << dtype_name(dt);
  }
}

TEST(LayerNorm, GradientMatchesTorch) {
  Tensor x = leaf(F("ln.x").to(DType::f64)), w = leaf(F("ln.w8").to(DType::f64)),
         b = leaf(F("ln.b8").to(DType::f64));
  sum(mul(layer_norm(x, {8}, w, b), F("ln.grad.w"))).backward();
  EXPECT_TRUE(all_close(x.grad(), F("ln.grad.x"), 1e-10, 1e-8));
  EXPECT_TRUE(all_close(w.grad(), F("ln.grad.weight"), 1e-10, 1e-8));
  EXPECT_TRUE(all_close(b.grad(), F("ln.grad.bias"), 1e-10, 1e-8));
}

TEST(LayerNorm, Gradcheck) {
  Tensor x = rand_input({3, 2, 5}, 1, -2, 2);
  Tensor w = rand_input({5}, 2), b = rand_input({5}, 3);
  Tensor w2 = rand_input({2, 5}, 4), b2 = rand_input({2, 5}, 5);
  EXPECT_TRUE(
      gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], {5}, in[1], in[2]); },
                {x, w, b}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        return layer_norm(in[0], {2, 5}, in[1], in[2]);
      },
      {x, w2, b2}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], {5}, in[1]); },
                        {x, w}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], {5}, Tensor(), in[1], 0.1); },
      {x, b}));
  // Through a non-contiguous view, and with only the parameters requiring grad.
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        return layer_norm(in[0].transpose(0, 2), {3}, in[1], in[2]);
      },
      {x, rand_input({3}, 6), rand_input({3}, 7)}));
  Tensor fixed = x.detach();
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) { return layer_norm(fixed, {5}, in[0], in[1]); }, {w, b}));
}

TEST(LayerNorm, ManyRowsOnSeveralThreads) {
  // More rows than one block of the weight/bias reduction, split among threads; checked against
  // the definition written with ops (forward and gradients).
  const int saved = num_threads();
  set_num_threads(2);
  Generator g(3);
  Tensor x = leaf(randn({300, 7, 33}, DType::f64, &g));
  Tensor w = leaf(randn({33}, DType::f64, &g)), b = leaf(randn({33}, DType::f64, &g));
  Tensor gy = randn({300, 7, 33}, DType::f64, &g);
  sum(mul(layer_norm(x, {33}, w, b), gy)).backward();
  Tensor x2 = leaf(x.detach()), w2 = leaf(w.detach()), b2 = leaf(b.detach());
  Tensor mu = mean(x2, {2}, true);
  Tensor ref = add(mul(div(sub(x2, mu), sqrt(add(var(x2, {2}, 0, true), 1e-5))), w2), b2);
  sum(mul(ref, gy)).backward();
  EXPECT_TRUE(all_close(x.grad(), x2.grad(), 1e-10, 1e-8));
  EXPECT_TRUE(all_close(w.grad(), w2.grad(), 1e-9, 1e-8));
  EXPECT_TRUE(all_close(b.grad(), b2.grad(), 1e-9, 1e-8));
  set_num_threads(saved);
}

TEST(LayerNorm, BadInput) {
  Tensor x = Tensor::zeros({2, 3, 4});
  EXPECT_ERROR_HAS(
      layer_norm(x, {3}),
      "layer_norm: normalized_shape [3] must match the last dims of the input of shape [2, 3, 4]");
  EXPECT_ERROR_HAS(layer_norm(x, {1, 2, 3, 4}), "must match the last dims");
  EXPECT_ERROR_HAS(layer_norm(x, {4}, Tensor::ones({3})),
                   "layer_norm: weight has shape [3], expected [4] for input of shape [2, 3, 4]");
  EXPECT_ERROR_HAS(layer_norm(x, {4}, Tensor(), Tensor::ones({4}, DType::f64)),
                   "layer_norm: bias is f64 but the input is f32");
  EXPECT_ERROR_HAS(layer_norm(Tensor::zeros({2, 4}, DType::i32), {4}),
                   "layer_norm: expected a floating-point");
}

// ---------------------------------------------------------------- batch_norm

TEST(BatchNorm, TrainingTwiceThenEvalMatchesTorch) {
  for (const char* name : {"bn2", "bn3", "bn4"}) {
    const std::string n = name;
    const double momentum = n == "bn4" ? 0.3 : 0.1;
    Tensor rm = F(n + ".rm0").clone(), rv = F(n + ".rv0").clone();
    Tensor w = F(n + ".weight"), b = F(n + ".bias");
    EXPECT_TRUE(
        all_close(batch_norm(F(n + ".xa"), rm, rv, w, b, true, momentum), F(n + ".ya"), 1e-5, 1e-5))
        << n;
    EXPECT_TRUE(
        all_close(batch_norm(F(n + ".xb"), rm, rv, w, b, true, momentum), F(n + ".yb"), 1e-5, 1e-5))
        << n;
    EXPECT_TRUE(all_close(rm, F(n + ".rm2"), 1e-6, 1e-5)) << n << " running mean";
    EXPECT_TRUE(all_close(rv, F(n + ".rv2"), 1e-6, 1e-5)) << n << " running var";
    EXPECT_TRUE(all_close(batch_norm(F(n + ".xa"), rm, rv, w, b, false, momentum), F(n + ".eval"),
                          1e-5, 1e-5))
        << n;
    // Eval leaves the running statistics alone.
    EXPECT_TRUE(all_close(rm, F(n + ".rm2"), 1e-6, 1e-5)) << n;
  }
}

TEST(BatchNorm, NonContiguousInputWithoutAffine) {
  Tensor x = F("bn_cl.x").permute({0, 3, 1, 2});  // channels-last storage
  ASSERT_FALSE(x.is_contiguous());
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  EXPECT_TRUE(all_close(batch_norm(x, rm, rv, Tensor(), Tensor(), true), F("bn_cl.y"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(rm, F("bn_cl.rm"), 1e-6, 1e-5));
  EXPECT_TRUE(all_close(rv, F("bn_cl.rv"), 1e-6, 1e-5));
  // Without running statistics, training normalizes with the batch statistics only.
  EXPECT_TRUE(all_close(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true), F("bn_cl.y"),
                        1e-5, 1e-5));
}

TEST(BatchNorm, GradientMatchesTorch) {
  Tensor x = leaf(F("bn.grad.x0")), w = leaf(F("bn.grad.weight0")), b = leaf(F("bn.grad.bias0"));
  sum(mul(batch_norm(x, Tensor(), Tensor(), w, b, true), F("bn.grad.w"))).backward();
  EXPECT_TRUE(all_close(x.grad(), F("bn.grad.x"), 1e-10, 1e-8));
  EXPECT_TRUE(all_close(w.grad(), F("bn.grad.weight"), 1e-10, 1e-8));
  EXPECT_TRUE(all_close(b.grad(), F("bn.grad.bias"), 1e-10, 1e-8));
}

TEST(BatchNorm, GradcheckTrainingAndEval) {
  Tensor w = rand_input({3}, 11), b = rand_input({3}, 12);
  for (const Shape& shape : {Shape{5, 3}, Shape{2, 3, 4}, Shape{2, 3, 2, 3}}) {
    Tensor x = rand_input(shape, 10, -2, 2);
    EXPECT_TRUE(gradcheck(
        [](const std::vector<Tensor>& in) {
          return batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true);
        },
        {x, w, b}))
        << "training " << shape_str(shape);
    Tensor rm = Tensor::full({3}, 0.2, DType::f64), rv = Tensor::full({3}, 1.5, DType::f64);
    EXPECT_TRUE(gradcheck(
        [&](const std::vector<Tensor>& in) {
          return batch_norm(in[0], rm, rv, in[1], in[2], false);
        },
        {x, w, b}))
        << "eval " << shape_str(shape);
  }
  // Training with running statistics (updated on every call; the output does not depend on
  // them) and through a non-contiguous view.
  Tensor x = rand_input({3, 4, 3}, 13);
  Tensor rm = Tensor::zeros({3}, DType::f64), rv = Tensor::ones({3}, DType::f64);
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) {
        return batch_norm(in[0].transpose(1, 2), rm, rv, in[1], Tensor(), true);
      },
      {x, w}));
}

TEST(BatchNorm, BadInput) {
  Tensor x = Tensor::zeros({4, 3, 5});
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  EXPECT_ERROR_HAS(batch_norm(Tensor::zeros({4}), rm, rv, Tensor(), Tensor(), true),
                   "batch_norm: expected an input of shape [N, C, ...], got [4]");
  EXPECT_ERROR_HAS(
      batch_norm(x, Tensor::zeros({4}), rv, Tensor(), Tensor(), true),
      "batch_norm: running statistics must be floating-point of shape [3], got f32 [4]");
  EXPECT_ERROR_HAS(batch_norm(x, rm, rv, Tensor::ones({5}), Tensor(), true),
                   "batch_norm: weight has shape [5], expected [3] for input of shape [4, 3, 5]");
  EXPECT_ERROR_HAS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                   "batch_norm: evaluation mode needs running_mean and running_var");
  EXPECT_ERROR_HAS(batch_norm(x, rm, Tensor(), Tensor(), Tensor(), true),
                   "give both running_mean and running_var");
  EXPECT_ERROR_HAS(batch_norm(Tensor::zeros({1, 3}), rm, rv, Tensor(), Tensor(), true),
                   "batch_norm: training needs more than one value per channel");
}

// ---------------------------------------------------------------- l2_normalize

TEST(L2Normalize, MatchesTorch) {
  Tensor x = F("l2.x");  // row 2 is zero
  EXPECT_TRUE(all_close(l2_normalize(x), F("l2.d1"), 1e-6, 1e-5));
  EXPECT_TRUE(all_close(l2_normalize(x, 0), F("l2.d0"), 1e-6, 1e-5));
  Tensor x3 = F("l2.x3");
  EXPECT_TRUE(all_close(l2_normalize(x3, 1), F("l2.x3.d1"), 1e-6, 1e-5));
  EXPECT_TRUE(all_close(l2_normalize(x3.transpose(1, 2), 2), F("l2.x3.t.d2"), 1e-6, 1e-5));
  EXPECT_TRUE(all_close(l2_normalize(x3.transpose(1, 2), -1), F("l2.x3.t.d2"), 1e-6, 1e-5));
}

TEST(L2Normalize, Gradcheck) {
  Tensor x = rand_input({3, 4, 2}, 21);
  for (int64_t d : {0, 1, 2})
    EXPECT_TRUE(
        gradcheck([d](const std::vector<Tensor>& in) { return l2_normalize(in[0], d); }, {x}))
        << "dim " << d;
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return l2_normalize(in[0].transpose(0, 2), 1); }, {x}));
  // Rows whose norm is under eps are divided by eps (a linear map).
  Tensor tiny = rand_input({2, 3}, 22, -1e-3, 1e-3);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return l2_normalize(in[0], 1, 0.1); },
                        {tiny}, {1e-7, 1e-6, 1e-4}));
}

TEST(L2Normalize, BadInput) {
  EXPECT_ERROR_HAS(l2_normalize(Tensor::zeros({2, 3}), 2),
                   "l2_normalize: dim 2 is out of range for a tensor of shape [2, 3]");
  EXPECT_ERROR_HAS(l2_normalize(Tensor::zeros({2, 3}), 1, 0.0),
                   "l2_normalize: eps must be positive");
  EXPECT_ERROR_HAS(l2_normalize(Tensor::zeros({2}, DType::i64)),
                   "l2_normalize: expected a floating-point");
}
