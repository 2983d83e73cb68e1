// The autograd machinery itself: accumulation, graph lifetime, grad mode, detach.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"

using namespace shallow;

namespace {
Tensor leaf(std::vector<double> v) {
  Tensor t = Tensor::from_vector(v, {int64_t(v.size())});
  t.set_requires_grad(true);
  return t;
}
}  // namespace

TEST(Autograd, DiamondGraphSumsBothPaths) {
  Tensor x = leaf({1.0, 2.0, 3.0});
  Tensor y = mul(x, x);           // dy/dx = 2x
  Tensor z = sum(add(y, mul(x, 3.0)));  // dz/dx = 2x + 3
  z.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));
}

// The observer sees each node's backward begin and end, in the walk's order, and nothing once
// it is removed.
namespace {
std::vector<std::string> g_observed;
void observe(const std::string& name, bool finished) {
  g_observed.push_back((finished ? "end " : "begin ") + name);
}
}  // namespace

TEST(Autograd, BackwardObserverSeesEachNode) {
  Tensor x = leaf({1.0, 2.0});
  Tensor z = sum(exp(x));
  g_observed.clear();
  set_backward_observer(observe);
  z.backward();
  set_backward_observer(nullptr);
  ASSERT_EQ(g_observed.size(), 4u);
  EXPECT_EQ(g_observed[0].rfind("begin ", 0), 0u);
  EXPECT_EQ(g_observed[1], "end " + g_observed[0].substr(6));
  EXPECT_EQ(g_observed[2].rfind("begin ", 0), 0u);
  EXPECT_EQ(g_observed[3], "end " + g_observed[2].substr(6));
  EXPECT_NE(g_observed[0], g_observed[2]);  // sum, then exp
  sum(exp(x)).backward();
  EXPECT_EQ(g_observed.size(), 4u);
}

TEST(Autograd, GradientsAccumulateUntilZeroed) {
  Tensor x = leaf({1.0, -2.0});
  sum(mul(x, 2.0)).backward();
  sum(mul(x, 2.0)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 4}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 1}));
}

// A leaf's first gradient becomes its .grad as it is when nothing else holds it, and is copied
// when something does: the same gradient handed to two inputs (add), a gradient the op keeps,
// the seed of backward() itself. Updating one .grad in place then never reaches another tensor.
TEST(Autograd, FirstGradientTakenWhenUnsharedCopiedOtherwise) {
  Tensor a = leaf({1.0, 2.0}), b = leaf({3.0, 4.0});
  add(a, b).backward(Tensor::from_vector(std::vector<double>{1, 1}, {2}));
  EXPECT_NE(a.grad().storage(), b.grad().storage());

  Tensor s = leaf({5.0, 6.0});
  const Tensor seed = Tensor::from_vector(std::vector<double>{0.5, 0.25}, {2});
  s.backward(seed);
  EXPECT_NE(s.grad().storage(), seed.storage());

  // A node whose backward returns a fresh tensor, and one whose backward returns a tensor it
  // also keeps for itself.
  Tensor w = leaf({1.0, 2.0, 3.0});
  const void* fresh_data = nullptr;
  Tensor fresh_out = Tensor::zeros({3}, DType::f64);
  record(fresh_out, "fresh", {&w}, [&](const Tensor&) -> std::vector<Tensor> {
    Tensor g = Tensor::full({3}, 2.0, DType::f64);
    fresh_data = g.raw_data();
    return {g};
  });
  fresh_out.backward(Tensor::ones({3}, DType::f64));
  EXPECT_EQ(w.grad().raw_data(), fresh_data);  // taken, not copied

  Tensor v = leaf({1.0, 2.0, 3.0});
  const Tensor kept = Tensor::full({3}, 7.0, DType::f64);
  Tensor kept_out = Tensor::zeros({3}, DType::f64);
  record(kept_out, "kept", {&v}, [kept](const Tensor&) -> std::vector<Tensor> { return {kept}; });
  kept_out.backward(Tensor::ones({3}, DType::f64));
  EXPECT_NE(v.grad().raw_data(), kept.raw_data());  // copied: the node still holds it
  EXPECT_EQ(v.grad().to_vector<double>(), (std::vector<double>{7, 7, 7}));
}

// A weight used through a view (a linear layer's weight.t()) takes the gradient that comes back
// through the view's backward when it is laid out as the weight: the view node's incoming
// gradient is let go of before the leaf is reached, so nothing else holds that storage.
TEST(Autograd, FirstGradientTakenThroughATranspose) {
  Tensor w = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad(true);
  const Tensor wt = w.t();
  const void* fresh_data = nullptr;
  Tensor out = Tensor::zeros({3, 2}, DType::f64);
  record(out, "fresh_transposed", {&wt}, [&](const Tensor&) -> std::vector<Tensor> {
    const Tensor g = Tensor::from_vector(std::vector<double>{10, 20, 30, 40, 50, 60}, {2, 3});
    fresh_data = g.raw_data();
    return {g.t()};  // [3, 2], laid out as w
  });
  out.backward(Tensor::ones({3, 2}, DType::f64));
  EXPECT_EQ(w.grad().raw_data(), fresh_data);  // taken, not copied
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{10, 20, 30, 40, 50, 60}));
}

TEST(Autograd, SecondBackwardNeedsRetainGraph) {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_NEAR(x.grad().to_vector<double>()[0], 2 * std::exp(1.0), 1e-12);
  EXPECT_THROW(y.backward(), Error);  // the graph was freed by the last call
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = leaf({1.0, 2.0});
  Tensor y;
  {
    NoGrad ng;
    y = mul(x, x);
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_TRUE(grad_enabled());
  EXPECT_THROW(sum(y).backward(), Error);
}

TEST(Autograd, DetachCutsTheGraphButSharesStorage) {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = mul(x, 3.0);
  Tensor d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage(), y.storage());
  sum(mul(y, d)).backward();  // d is a constant: dz/dx = 3 * d
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{9, 18}));
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = mul(x, 2.0);
  EXPECT_THROW(y.backward(), Error);
  y.backward(Tensor::from_vector(std::vector<double>{1.0, 10.0}, {2}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 20}));
}

TEST(Autograd, OnlyFloatLeavesCanRequireGrad) {
  Tensor i = Tensor::arange(3);
  EXPECT_THROW(i.set_requires_grad(true), Error);
  Tensor x = leaf({1.0});
  Tensor y = mul(x, 2.0);
  EXPECT_THROW(y.set_requires_grad(true), Error);  // not a leaf
}

TEST(Autograd, HalfPrecisionGradientsFlowThroughConversions) {
  Tensor x = Tensor::from_vector(std::vector<float>{0.5f, 1.5f}, {2}).to(DType::bf16);
  x.set_requires_grad(true);
  sum(mul(x, x)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::bf16);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1.0f, 3.0f}));
}

TEST(Autograd, DeepChainsDoNotOverflowTheStack) {
  Tensor x = leaf({1.0});
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = add(y, 1e-3);
  sum(y).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1.0}));
  // A deep graph that is dropped without a backward pass is freed without recursion too.
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = mul(z, 1.0);
  z = Tensor();
}
