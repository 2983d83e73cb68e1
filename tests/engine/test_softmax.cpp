// softmax and log_softmax against PyTorch (tests/reference/ops_softmax.py), their gradients by
// finite differences, and the errors they give.
#include <gtest/gtest.h>

#include <cmath>

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
  static const Fixture f("ops_softmax");
  return f.get(key);
}

}  // namespace

TEST(Softmax, EveryDimMatchesTorch) {
  Tensor x = F("x");
  for (int d = 0; d < 3; ++d) {
    const std::string s = std::to_string(d);
    EXPECT_TRUE(all_close(softmax(x, d), F("softmax.d" + s), 1e-6, 1e-5)) << "dim " << d;
    EXPECT_TRUE(all_close(log_softmax(x, d), F("log_softmax.d" + s), 1e-5, 1e-5)) << "dim " << d;
    EXPECT_TRUE(all_close(softmax(x, d - 3), F("softmax.d" + s), 1e-6, 1e-5)) << "dim " << d - 3;
  }
}

TEST(Softmax, NonContiguousInput) {
  Tensor xt = F("x").transpose(0, 2);
  ASSERT_FALSE(xt.is_contiguous());
  for (int d = 0; d < 3; ++d) {
    const std::string s = std::to_string(d);
    EXPECT_TRUE(all_close(softmax(xt, d), F("transposed.softmax.d" + s), 1e-6, 1e-5)) << d;
    EXPECT_TRUE(all_close(log_softmax(xt, d), F("transposed.log_softmax.d" + s), 1e-5, 1e-5)) << d;
  }
}

TEST(Softmax, LargeValuesStayFinite) {
  Tensor big = F("big");  // values near 1000: exp overflows without the max shift
  Tensor y = softmax(big, -1);
  EXPECT_TRUE(all_close(y, F("big.softmax"), 1e-6, 1e-5));
  EXPECT_TRUE(all_close(log_softmax(big, -1), F("big.log_softmax"), 1e-4, 1e-5));
  EXPECT_TRUE(all_close(log_softmax(neg(big), -1), F("big_neg.log_softmax"), 1e-4, 1e-5));
  for (float v : y.to_vector<float>()) ASSERT_TRUE(std::isfinite(v));
  // Rows sum to one.
  EXPECT_TRUE(all_close(sum(y, {1}), Tensor::ones({4}), 1e-5, 0));
}

TEST(Softmax, GradientMatchesTorch) {
  for (const char* fn : {"softmax", "log_softmax"}) {
    Tensor x = F("grad.x").clone().detach();
    x.set_requires_grad(true);
    Tensor y = std::string(fn) == "softmax" ? softmax(x, 1) : log_softmax(x, 1);
    sum(mul(y, F("grad.w"))).backward();
    EXPECT_TRUE(all_close(x.grad(), F(std::string("grad.") + fn), 1e-12, 1e-10)) << fn;
  }
}

TEST(Softmax, Gradcheck) {
  Tensor x = rand_input({3, 4, 5}, 1, -2, 2);
  for (int64_t d : {0, 1, 2, -1}) {
    EXPECT_TRUE(gradcheck([d](const std::vector<Tensor>& in) { return softmax(in[0], d); }, {x}))
        << "softmax dim " << d;
    EXPECT_TRUE(
        gradcheck([d](const std::vector<Tensor>& in) { return log_softmax(in[0], d); }, {x}))
        << "log_softmax dim " << d;
  }
  // Through a non-contiguous view.
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return softmax(in[0].transpose(0, 2), 1); }, {x}));
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        return log_softmax(in[0].permute({1, 2, 0}), 2);
      },
      {x}));
}

TEST(Softmax, SmallShapes) {
  // A 0-d tensor and a row of one give 1 (log: 0).
  EXPECT_DOUBLE_EQ(softmax(Tensor::scalar(3.0), 0).item(), 1.0);
  EXPECT_DOUBLE_EQ(log_softmax(Tensor::scalar(3.0), -1).item(), 0.0);
  EXPECT_EQ(softmax(Tensor::zeros({2, 1}), 1).to_vector<float>(), (std::vector<float>{1, 1}));
  // Uniform rows.
  EXPECT_TRUE(all_close(softmax(Tensor::zeros({2, 4}), 1), Tensor::full({2, 4}, 0.25), 0, 0));
  // -inf logits get probability 0.
  Tensor m = Tensor::from_vector<float>({0.f, -INFINITY, 0.f}, {3});
  EXPECT_EQ(softmax(m, 0).to_vector<float>(), (std::vector<float>{0.5f, 0.f, 0.5f}));
}

TEST(Softmax, HalfInputs) {
  Tensor x = F("x");
  Tensor h = softmax(x.to(DType::bf16), 1);
  EXPECT_EQ(h.dtype(), DType::bf16);
  EXPECT_TRUE(all_close(h, F("softmax.d1"), 1e-2, 1e-2));
  EXPECT_TRUE(all_close(log_softmax(x.to(DType::f16), 2), F("log_softmax.d2"), 1e-2, 1e-2));
}

TEST(Softmax, BadInput) {
  Tensor x = Tensor::zeros({2, 3});
  std::string msg = error_of([&] { softmax(x, 2); });
  EXPECT_NE(msg.find("softmax: dim 2 is out of range for a tensor of shape [2, 3]"),
            std::string::npos)
      << msg;
  msg = error_of([&] { log_softmax(x, -3); });
  EXPECT_NE(msg.find("log_softmax"), std::string::npos) << msg;
  msg = error_of([&] { softmax(Tensor::zeros({2, 3}, DType::i64), 1); });
  EXPECT_NE(msg.find("softmax: expected a floating-point tensor, got i64 of shape [2, 3]"),
            std::string::npos)
      << msg;
  EXPECT_THROW(softmax(Tensor::scalar(1.0), 1), Error);
}

TEST(Softmax, LargeTensorOnSeveralThreads) {
  // Big enough to be split among threads; checked against the same formula written with ops.
  const int saved = num_threads();
  set_num_threads(2);
  Generator g(7);
  Tensor x = randn({300, 129}, DType::f32, &g);
  for (int64_t d : {0, 1}) {
    Tensor e = exp(sub(x, max(x, {d}, true)));
    Tensor expected = div(e, sum(e, {d}, true));
    EXPECT_TRUE(all_close(softmax(x, d), expected, 1e-6, 1e-5)) << "dim " << d;
    EXPECT_TRUE(all_close(log_softmax(x, d), log(expected), 1e-5, 1e-5)) << "dim " << d;
  }
  set_num_threads(saved);
}
