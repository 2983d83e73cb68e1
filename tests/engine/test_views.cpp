// View ops: reshape (of non-contiguous tensors too), view, permute, transpose, slice with a
// step, narrow, select, expand, squeeze/unsqueeze, flatten. Values are checked by index
// arithmetic, sharing of storage where PyTorch shares it, gradients by finite differences.
#include <gtest/gtest.h>

#include <functional>

#include "engine/ops.h"
#include "tests/support/gradcheck.h"
#include "tests/support/errors.h"

using namespace shallow;
using shallow::testing::error_of;
using shallow::testing::gradcheck;
using shallow::testing::rand_input;

namespace {

using Args = std::vector<Tensor>;
using Values = std::vector<float>;

// 0, 1, 2, ... in the given shape (f32), so that a value tells where it came from.
Tensor iota(const Shape& s) { return Tensor::arange(shape_numel(s), DType::f32).reshape(s); }
Values values(const Tensor& t) { return t.to_vector<float>(); }
bool shares(const Tensor& a, const Tensor& b) { return a.storage() == b.storage(); }

}  // namespace

TEST(Views, PermuteAndTranspose) {
  Tensor x = iota({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});  // p[k][i][j] = x[i][j][k] = 12 i + 4 j + k
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  EXPECT_TRUE(shares(p, x));
  Values expected;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) expected.push_back(float(12 * i + 4 * j + k));
  EXPECT_EQ(values(p), expected);
  EXPECT_EQ(values(x.permute({-1, 0, -2})), expected);  // negative dims
  EXPECT_EQ(values(x.transpose(0, 2).transpose(0, 2)), values(x));
  EXPECT_EQ(x.transpose(-1, 0).shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(values(iota({2, 3}).t()), (Values{0, 3, 1, 4, 2, 5}));
}

TEST(Views, ReshapeOfNonContiguousCopiesOnlyWhenItMust) {
  Tensor x = iota({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});  // [4, 2, 3] with strides [1, 12, 4]
  Tensor r = p.reshape({4, 6});     // p's last two dims are one run in memory: a view
  EXPECT_TRUE(shares(r, x));
  EXPECT_EQ(values(r), values(p));
  Tensor f = p.reshape({24});  // needs a copy
  EXPECT_FALSE(shares(f, x));
  EXPECT_EQ(values(f), values(p));
  EXPECT_EQ(values(p.reshape({2, -1, 3})), values(p));
  EXPECT_EQ(values(p.reshape({8, 3})), values(p));  // merges k and i: a copy, right values
  // Size-1 dims come and go without a copy, even on a transposed tensor.
  Tensor t = iota({3, 4}).t();
  EXPECT_TRUE(shares(t.reshape({4, 1, 3}), t));
  EXPECT_TRUE(shares(t.unsqueeze(0).unsqueeze(-1).reshape({4, 3}), t));
  EXPECT_EQ(values(t.reshape({1, 4, 3, 1})), values(t));
  // A strided slice reshaped.
  Tensor s = iota({4, 6}).slice(1, 1, 6, 2);  // columns 1, 3, 5
  EXPECT_EQ(values(s.reshape({2, 6})), (Values{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
}

TEST(Views, ViewNeedsCompatibleStrides) {
  Tensor x = iota({2, 3, 4});
  EXPECT_TRUE(shares(x.view({6, 4}), x));
  EXPECT_TRUE(shares(x.view({-1}), x));
  EXPECT_TRUE(shares(x.permute({2, 0, 1}).view({4, 6}), x));
  EXPECT_ERROR_HAS(x.permute({2, 0, 1}).view({24}), "view: a tensor of shape [4, 2, 3] with these strides cannot be viewed as [24] (use reshape)");
  EXPECT_ERROR_HAS(x.view({5, -1}), "view: shape [5, -1] is invalid for a tensor of shape [2, 3, 4]");
  EXPECT_ERROR_HAS(x.reshape({-1, -1}), "reshape: only one dimension can be -1, got [-1, -1]");
  EXPECT_ERROR_HAS(x.reshape({7}), "reshape: shape [7] is invalid for a tensor of shape [2, 3, 4] (24 elements)");
  EXPECT_ERROR_HAS(x.reshape({-2, 12}), "reshape: invalid size -2 in [-2, 12]");
  // Empty tensors reshape freely among shapes with no elements.
  EXPECT_EQ(Tensor::zeros({0, 3}).reshape({3, 0, 5}).shape(), (Shape{3, 0, 5}));
}

TEST(Views, SliceWithStep) {
  Tensor x = iota({10});
  EXPECT_EQ(values(x.slice(0, 1, 8, 3)), (Values{1, 4, 7}));
  EXPECT_EQ(values(x.slice(0, 1, 9, 3)), (Values{1, 4, 7}));
  EXPECT_EQ(values(x.slice(0, 0, 10, 4)), (Values{0, 4, 8}));
  EXPECT_EQ(values(x.slice(0, -3, 10)), (Values{7, 8, 9}));   // negative start counts from the end
  EXPECT_EQ(values(x.slice(0, 2, -6)), (Values{2, 3}));       // negative end too
  EXPECT_EQ(values(x.slice(0, 8, 100)), (Values{8, 9}));      // clamped, as Python
  EXPECT_EQ(values(x.slice(0, -100, 2)), (Values{0, 1}));
  EXPECT_EQ(x.slice(0, 7, 3).numel(), 0);                     // start past end: empty
  EXPECT_EQ(values(x.slice(0, 5, 6, 20)), (Values{5}));       // step longer than the range
  Tensor m = iota({4, 6});
  Tensor s = m.slice(1, 1, 6, 2).slice(0, 1, 4, 2);  // rows 1, 3; columns 1, 3, 5
  EXPECT_EQ(values(s), (Values{7, 9, 11, 19, 21, 23}));
  EXPECT_EQ(s.strides(), (Shape{12, 2}));
  EXPECT_TRUE(shares(s, m));
  // Writing through a slice changes the base.
  s.fill_(-1);
  EXPECT_EQ(values(m.select(0, 1)), (Values{6, -1, 8, -1, 10, -1}));
  EXPECT_ERROR_HAS(x.slice(0, 0, 5, 0), "slice: step must be positive, got 0");
  EXPECT_ERROR_HAS(x.slice(1, 0, 5), "slice: dim 1 is out of range for a tensor of shape [10]");
}

TEST(Views, NarrowAndSelect) {
  Tensor m = iota({3, 4});
  EXPECT_EQ(values(m.narrow(1, 1, 2)), (Values{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(values(m.narrow(0, -1, 1)), (Values{8, 9, 10, 11}));
  EXPECT_EQ(values(m.select(1, -1)), (Values{3, 7, 11}));
  EXPECT_EQ(m.select(0, 2).shape(), (Shape{4}));
  EXPECT_ERROR_HAS(m.narrow(1, 3, 2), "narrow: [3, 5) is out of range for dim 1 of size 4");
  EXPECT_ERROR_HAS(m.select(0, -4), "select: index -4 is out of range for dim 0 of size 3");
  EXPECT_ERROR_HAS(Tensor::scalar(1).select(0, 0), "select: cannot select from a scalar");
  EXPECT_ERROR_HAS(Tensor::scalar(1).size(0), "size(0): a scalar (shape []) has no dims");
}

TEST(Views, Expand) {
  Tensor c = iota({3, 1});
  Tensor e = c.expand({2, 3, 4});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  EXPECT_TRUE(shares(e, c));
  Values expected;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) expected.push_back(float(i));
  EXPECT_EQ(values(e), expected);
  EXPECT_EQ(c.expand({-1, 5}).shape(), (Shape{3, 5}));  // -1 keeps a size
  EXPECT_EQ(Tensor::scalar(2).expand({2, 2}).to_vector<float>(), (Values{2, 2, 2, 2}));
  EXPECT_EQ(values(e.contiguous()), expected);
  EXPECT_ERROR_HAS(c.expand({3, 2, 1}), "expand: cannot expand shape [3, 1] to [3, 2, 1]");
  EXPECT_ERROR_HAS(c.expand({4}), "expand: cannot expand shape [3, 1] to [4]");
  EXPECT_ERROR_HAS(c.expand({-1, 3, 1}), "expand: invalid size -1 in [-1, 3, 1]");
}

TEST(Views, SqueezeUnsqueezeFlatten) {
  Tensor x = iota({2, 1, 3, 1});
  EXPECT_EQ(x.squeeze().shape(), (Shape{2, 3}));
  EXPECT_EQ(x.squeeze(1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(x.squeeze(-1).shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(x.squeeze(0).shape(), x.shape());  // not of size 1: unchanged
  EXPECT_EQ(x.unsqueeze(0).shape(), (Shape{1, 2, 1, 3, 1}));
  EXPECT_EQ(x.unsqueeze(4).shape(), (Shape{2, 1, 3, 1, 1}));
  EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 1, 3, 1, 1}));
  EXPECT_EQ(x.unsqueeze(-5).shape(), (Shape{1, 2, 1, 3, 1}));
  EXPECT_ERROR_HAS(x.unsqueeze(5), "unsqueeze: dim 5 is out of range");
  EXPECT_ERROR_HAS(x.squeeze(4), "squeeze: dim 4 is out of range");
  // On a transposed tensor both stay views.
  Tensor t = iota({3, 4}).t();
  EXPECT_TRUE(shares(t.unsqueeze(1), t));
  EXPECT_EQ(values(t.unsqueeze(1).squeeze(1)), values(t));
  // A scalar: dims 0 and -1 are valid for squeeze/unsqueeze, as in PyTorch.
  Tensor s = Tensor::scalar(5);
  EXPECT_EQ(s.unsqueeze(0).shape(), (Shape{1}));
  EXPECT_EQ(s.unsqueeze(-1).shape(), (Shape{1}));
  EXPECT_EQ(s.squeeze(0).shape(), Shape{});
  EXPECT_EQ(s.flatten().shape(), (Shape{1}));

  Tensor y = iota({2, 3, 4, 5});
  EXPECT_EQ(y.flatten().shape(), (Shape{120}));
  EXPECT_EQ(y.flatten(1).shape(), (Shape{2, 60}));
  EXPECT_EQ(y.flatten(1, 2).shape(), (Shape{2, 12, 5}));
  EXPECT_EQ(y.flatten(-2, -1).shape(), (Shape{2, 3, 20}));
  EXPECT_EQ(y.flatten(2, 2).shape(), y.shape());
  Tensor yp = y.permute({3, 1, 2, 0});
  EXPECT_EQ(values(yp.flatten(1, 2)), values(yp));  // a copy, in the permuted order
  EXPECT_ERROR_HAS(y.flatten(2, 1), "flatten: start dim 2 is after end dim 1");
}

TEST(Views, CopiesAreIndependent) {
  Tensor x = iota({2, 3});
  Tensor c = x.clone();
  EXPECT_FALSE(shares(c, x));
  c.fill_(0);
  EXPECT_EQ(values(x), (Values{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(x.contiguous().impl_ptr(), x.impl_ptr());  // already contiguous: itself
  Tensor t = x.t().contiguous();
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(values(t), (Values{0, 3, 1, 4, 2, 5}));
  // copy_ broadcasts its source.
  Tensor d = Tensor::zeros({2, 3});
  d.copy_(iota({3}));
  EXPECT_EQ(values(d), (Values{0, 1, 2, 0, 1, 2}));
  d.t().copy_(iota({3, 2}));  // into a transposed view
  EXPECT_EQ(values(d), (Values{0, 2, 4, 1, 3, 5}));
}

TEST(Views, Gradients) {
  Tensor x = rand_input({2, 3, 4}, 400);
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> views = {
      {"permute", [](const Tensor& v) { return v.permute({2, 0, 1}); }},
      {"transpose", [](const Tensor& v) { return v.transpose(0, -1); }},
      {"reshape view", [](const Tensor& v) { return v.reshape({6, 4}); }},
      {"reshape copy", [](const Tensor& v) { return v.permute({2, 0, 1}).reshape({-1}); }},
      {"view", [](const Tensor& v) { return v.view({4, 6}); }},
      {"slice step", [](const Tensor& v) { return v.slice(2, 0, 4, 3); }},
      {"slice of permute", [](const Tensor& v) { return v.permute({1, 2, 0}).slice(1, 1, 4, 2); }},
      {"narrow", [](const Tensor& v) { return v.narrow(1, 1, 2); }},
      {"select", [](const Tensor& v) { return v.select(2, -1); }},
      {"expand", [](const Tensor& v) { return v.slice(1, 0, 1).expand({3, 2, 3, 4}); }},
      {"squeeze", [](const Tensor& v) { return v.narrow(1, 0, 1).squeeze(1); }},
      {"unsqueeze", [](const Tensor& v) { return v.transpose(0, 2).unsqueeze(1); }},
      {"flatten", [](const Tensor& v) { return v.transpose(0, 1).flatten(1); }},
      {"contiguous", [](const Tensor& v) { return v.transpose(1, 2).contiguous(); }},
      {"clone", [](const Tensor& v) { return v.clone(); }},
  };
  for (const auto& [name, fn] : views)
    EXPECT_TRUE(gradcheck([&](const Args& v) { return fn(v[0]); }, {x})) << name;
}
