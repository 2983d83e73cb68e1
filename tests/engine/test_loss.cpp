// cross_entropy and mse_loss against PyTorch (tests/reference/ops_loss.py), their gradients by
// finite differences and against PyTorch's, and the errors they give.
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
  static const Fixture f("ops_loss");
  return f.get(key);
}

Tensor targets(const std::vector<int64_t>& v) {
  return Tensor::from_vector(v, {int64_t(v.size())});
}

}  // namespace

TEST(CrossEntropy, EveryReductionAndSmoothingMatchesTorch) {
  Tensor logits = F("ce.logits"), target = F("ce.target");
  for (const char* s : {"0.0", "0.1", "0.3"}) {
    for (const char* red : {"mean", "sum", "none"}) {
      Tensor out = cross_entropy(logits, target, std::stod(s), red);
      Tensor expected = F(std::string("ce.s") + s + "." + red);
      EXPECT_EQ(out.shape(), expected.shape()) << s << " " << red;
      EXPECT_TRUE(all_close(out, expected, 1e-5, 1e-5)) << s << " " << red;
    }
  }
}

TEST(CrossEntropy, NonContiguousAndUnbatched) {
  Tensor lt = F("ce_t.logits").t();
  ASSERT_FALSE(lt.is_contiguous());
  EXPECT_TRUE(all_close(cross_entropy(lt, F("ce.target"), 0.2), F("ce_t.s0.2.mean"), 1e-5, 1e-5));
  // Logits [C] and a 0-d target; i32 targets work too.
  Tensor one = F("ce1.logits"), t1 = F("ce1.target");
  EXPECT_TRUE(all_close(cross_entropy(one, t1, 0.1), F("ce1.s0.1.mean"), 1e-5, 1e-5));
  Tensor none = cross_entropy(one, t1.to(DType::i32), 0.1, "none");
  EXPECT_EQ(none.shape(), Shape{});
  EXPECT_TRUE(all_close(none, F("ce1.s0.1.none"), 1e-5, 1e-5));
}

TEST(CrossEntropy, GradientMatchesTorch) {
  Tensor target = F("ce.target");
  auto logits = [] {
    Tensor x = F("ce.logits").clone().detach();
    x.set_requires_grad(true);
    return x;
  };
  Tensor x = logits();
  cross_entropy(x, target, 0.1).backward();
  EXPECT_TRUE(all_close(x.grad(), F("ce.grad.s0.1.mean"), 1e-6, 1e-5));
  x = logits();
  sum(mul(cross_entropy(x, target, 0.25, "none"), F("ce.grad.w"))).backward();
  EXPECT_TRUE(all_close(x.grad(), F("ce.grad.s0.25.none"), 1e-6, 1e-5));
  x = logits();
  cross_entropy(x, target, 0.0, "sum").backward();
  EXPECT_TRUE(all_close(x.grad(), F("ce.grad.s0.0.sum"), 1e-6, 1e-5));
}

TEST(CrossEntropy, Gradcheck) {
  Tensor x = rand_input({4, 5}, 3, -2, 2);
  Tensor t = targets({1, 0, 4, 1});
  for (double s : {0.0, 0.15, 1.0}) {
    for (const char* red : {"mean", "sum", "none"}) {
      EXPECT_TRUE(gradcheck(
          [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, s, red); }, {x}))
          << "smoothing " << s << " " << red;
    }
  }
  // Non-contiguous logits and the unbatched form.
  Tensor xt = rand_input({5, 4}, 4);
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) { return cross_entropy(in[0].t(), t, 0.1); }, {xt}));
  Tensor x1 = rand_input({6}, 5);
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        return cross_entropy(in[0], Tensor::scalar(2.0, DType::i64), 0.3, "none");
      },
      {x1}));
}

// Logits stored by class (logits = L.t() with L contiguous, as CLIP's loss over columns) are
// read in place by their own kernel: values and gradients agree with the row kernel on a
// contiguous copy, for row counts around its 64-row blocks, with and without smoothing, in
// float and double, with large logits in the mix.
TEST(CrossEntropy, ByClassLayoutMatchesRows) {
  for (DType dt : {DType::f32, DType::f64}) {
    for (int64_t rows : {2, 63, 64, 65, 130}) {
      for (int64_t classes : {3, 100}) {
        Tensor stored = rand_input({classes, rows}, uint64_t(rows * classes), -4, 4).to(dt);
        std::vector<int64_t> tv(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) tv[size_t(r)] = (r * 7 + 3) % classes;
        const Tensor t = targets(tv);
        for (double smoothing : {0.0, 0.2}) {
          SCOPED_TRACE(std::string(dtype_name(dt)) + " rows " + std::to_string(rows) + " classes " +
                       std::to_string(classes) + " smoothing " + std::to_string(smoothing));
          Tensor a = stored.clone().detach(), b = stored.t().contiguous().detach();
          if (rows > 1) a.narrow(0, 0, 1).narrow(1, 1, 1).fill_(800.0);  // one huge logit
          if (rows > 1) b.narrow(0, 1, 1).narrow(1, 0, 1).fill_(800.0);
          a.set_requires_grad(true);
          b.set_requires_grad(true);
          const Tensor by_class = cross_entropy(a.t(), t, smoothing, "none");
          const Tensor by_row = cross_entropy(b, t, smoothing, "none");
          const double tol = dt == DType::f32 ? 2e-5 : 1e-12;
          EXPECT_TRUE(all_close(by_class, by_row, tol, tol));
          sum(by_class).backward();
          sum(by_row).backward();
          EXPECT_TRUE(all_close(a.grad().t(), b.grad(), tol, tol));
        }
      }
    }
  }
}

TEST(CrossEntropy, LargeLogitsStayFinite) {
  Tensor x = Tensor::from_vector<float>({1000.f, 0.f, -1000.f}, {1, 3});
  EXPECT_NEAR(cross_entropy(x, targets({0})).item(), 0.0, 1e-6);
  EXPECT_NEAR(cross_entropy(x, targets({1})).item(), 1000.0, 1e-3);
}

TEST(CrossEntropy, BadInput) {
  Tensor x = Tensor::zeros({3, 4});
  EXPECT_ERROR_HAS(
      cross_entropy(x, targets({0, 4, 1})),
      "cross_entropy: target 4 at index 1 is out of range for 4 classes (logits of shape [3, 4])");
  EXPECT_ERROR_HAS(cross_entropy(x, targets({0, -1, 1})), "target -1 at index 1 is out of range");
  EXPECT_ERROR_HAS(cross_entropy(x, targets({0, 1})),
                   "cross_entropy: target of shape [2] does not match logits of shape [3, 4]");
  EXPECT_ERROR_HAS(cross_entropy(x, Tensor::zeros({3})),
                   "cross_entropy: expected class-index targets of dtype i64 or i32, got f32");
  EXPECT_ERROR_HAS(cross_entropy(Tensor::zeros({2, 3, 4}), targets({0, 1})),
                   "cross_entropy: expected logits of shape [N, C] or [C], got [2, 3, 4]");
  EXPECT_ERROR_HAS(cross_entropy(x, targets({0, 1, 2}), 1.5), "label_smoothing must be in [0, 1]");
  EXPECT_ERROR_HAS(cross_entropy(x, targets({0, 1, 2}), 0.0, "avg"),
                   "cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'");
  EXPECT_ERROR_HAS(cross_entropy(Tensor::zeros({3, 4}, DType::i64), targets({0, 1, 2})),
                   "cross_entropy: expected a floating-point tensor");
}

TEST(MseLoss, EveryReductionMatchesTorch) {
  Tensor a = F("mse.input"), b = F("mse.target");
  for (const char* red : {"mean", "sum", "none"})
    EXPECT_TRUE(all_close(mse_loss(a, b, red), F(std::string("mse.") + red), 1e-6, 1e-6)) << red;
  // Non-contiguous operands.
  EXPECT_TRUE(all_close(mse_loss(a.t(), b.t(), "none"), F("mse.none").t(), 1e-6, 1e-6));
}

TEST(MseLoss, Gradcheck) {
  Tensor a = rand_input({3, 4}, 6), b = rand_input({3, 4}, 7);
  for (const char* red : {"mean", "sum", "none"})
    EXPECT_TRUE(gradcheck(
        [&](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], red); }, {a, b}))
        << red;
}

TEST(MseLoss, BadInput) {
  EXPECT_ERROR_HAS(mse_loss(Tensor::zeros({3, 4}), Tensor::zeros({4, 3})),
                   "mse_loss: input of shape [3, 4] and target of shape [4, 3] differ");
  EXPECT_ERROR_HAS(mse_loss(Tensor::zeros({3}), Tensor::zeros({3}, DType::f64)),
                   "mse_loss: dtypes differ");
  EXPECT_ERROR_HAS(mse_loss(Tensor::zeros({3}), Tensor::zeros({3}), "max"),
                   "mse_loss: reduction must be");
}
