// linear's fused inference path and linear_act: the bias and activation applied inside the
// gemm give what linear followed by the activation op gives (those are checked against PyTorch
// in test_matmul and the unary tests), for f32 and f64, 1-D to 3-D inputs, transposed and
// sliced weights; with a gradient to record, linear_act's backward by finite differences.
#include <gtest/gtest.h>

#include <string>

#include "engine/ops.h"
#include "engine/random.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradcheck.h"
#include "tests/support/errors.h"

using namespace shallow;
using shallow::testing::error_of;
using shallow::testing::all_close;
using shallow::testing::gradcheck;
using shallow::testing::rand_input;

namespace {

Tensor reference(const Tensor& x, const Tensor& w, const Tensor& b, LinearAct act) {
  Tensor y = matmul(x, w.t());
  if (b.defined()) y = add(y, b);
  switch (act) {
    case LinearAct::none:
      return y;
    case LinearAct::relu:
      return relu(y);
    case LinearAct::gelu:
      return gelu(y);
    case LinearAct::gelu_tanh:
      return gelu(y, "tanh");
    case LinearAct::quick_gelu:
      return quick_gelu(y);
  }
  return y;
}

const LinearAct kActs[] = {LinearAct::none, LinearAct::relu, LinearAct::gelu, LinearAct::gelu_tanh,
                           LinearAct::quick_gelu};

}  // namespace

TEST(LinearAct, FusedInferenceMatchesLinearThenActivation) {
  NoGrad no_grad;
  Generator g(3);
  for (DType dt : {DType::f32, DType::f64}) {
    // 3 x 5 x 37 tokens into 45 features: edges of every register tile; K crosses no block.
    const Tensor x = mul(randn({3, 5, 37}, dt, &g), 2.0);
    const Tensor w = mul(randn({45, 37}, dt, &g), 0.3);
    const Tensor b = randn({45}, dt, &g);
    for (LinearAct act : kActs) {
      SCOPED_TRACE(int(act));
      const Tensor expected = reference(x, w, b, act);
      EXPECT_TRUE(all_close(linear_act(x, w, b, act), expected, 1e-5, 1e-5));
      EXPECT_TRUE(
          all_close(linear_act(x, w, Tensor(), act), reference(x, w, Tensor(), act), 1e-5, 1e-5));
      // A weight stored transposed, and a sliced (strided) one, are read as they are.
      const Tensor wt = w.t().contiguous().t();
      ASSERT_FALSE(wt.is_contiguous());
      EXPECT_TRUE(all_close(linear_act(x, wt, b, act), expected, 1e-5, 1e-5));
      const Tensor wide = randn({45, 80}, dt, &g);
      const Tensor ws = wide.slice(1, 3, 40);
      EXPECT_TRUE(all_close(linear_act(x, ws, b, act), reference(x, ws, b, act), 1e-5, 1e-5));
      // A non-contiguous input and a 1-D one.
      const Tensor xt = x.transpose(0, 1);
      EXPECT_TRUE(all_close(linear_act(xt, w, b, act), reference(xt, w, b, act), 1e-5, 1e-5));
      const Tensor x1 = x.select(0, 1).select(0, 2);
      EXPECT_TRUE(all_close(linear_act(x1, w, b, act), reference(x1, w, b, act), 1e-5, 1e-5));
    }
    // Plain linear takes the fused path too (no grad) and keeps its shape rules.
    EXPECT_TRUE(all_close(linear(x, w, b), reference(x, w, b, LinearAct::none), 1e-6, 1e-6));
    EXPECT_EQ(linear(x, w, b).shape(), (Shape{3, 5, 45}));
  }
}

TEST(LinearAct, LargeEnoughForTheKernelBlocksAndThreads) {
  NoGrad no_grad;
  Generator g(4);
  const Tensor x = randn({300, 700}, DType::f32, &g),
               w = mul(randn({130, 700}, DType::f32, &g), 0.05);
  const Tensor b = randn({130}, DType::f32, &g);
  EXPECT_TRUE(all_close(linear_act(x, w, b, LinearAct::gelu), reference(x, w, b, LinearAct::gelu),
                        1e-5, 1e-5));
}

TEST(LinearAct, WithGradientsFallsBackToTheOpsAndTheirBackward) {
  for (LinearAct act : kActs) {
    SCOPED_TRACE(int(act));
    const Tensor x = rand_input({2, 3, 4}, 1, -2, 2), w = rand_input({5, 4}, 2),
                 b = rand_input({5}, 3);
    EXPECT_TRUE(gradcheck(
        [act](const std::vector<Tensor>& in) { return linear_act(in[0], in[1], in[2], act); },
        {x, w, b}));
    const Tensor y = linear_act(x, w, b, act);
    EXPECT_TRUE(y.requires_grad());
    EXPECT_TRUE(
        all_close(y.detach(), reference(x.detach(), w.detach(), b.detach(), act), 1e-12, 1e-12));
  }
  // Only the input requires grad: still recorded.
  const Tensor x = rand_input({3, 4}, 5);
  Tensor w = rand_input({2, 4}, 6).detach();
  EXPECT_TRUE(linear_act(x, w, Tensor(), LinearAct::gelu).requires_grad());
  EXPECT_TRUE(linear(x, w).requires_grad());
}

TEST(LinearAct, BadShapesNameTheOpAndShapes) {
  NoGrad no_grad;
  const Tensor x = Tensor::zeros({2, 4}), w = Tensor::zeros({3, 4});
  EXPECT_NE(error_of([&] {
              linear_act(x, Tensor::zeros({3, 5}), Tensor(), LinearAct::relu);
            }).find("linear: input [2, 4] does not match weight [3, 5]"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { linear_act(x, w, Tensor::zeros({4}), LinearAct::relu); }).find("bias [4]"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              linear_act(x, Tensor::zeros({3, 4, 1}), Tensor(), LinearAct::none);
            }).find("weight must be 2-D"),
            std::string::npos);
}
