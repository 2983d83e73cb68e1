#include <gtest/gtest.h>

#include "engine/ops.h"
#include "tests/support/gradcheck.h"

using namespace shallow;
using shallow::testing::gradcheck;
using shallow::testing::rand_input;

TEST(Tensor, FactoriesAndViews) {
  Tensor a = Tensor::arange(6, DType::f32).reshape({2, 3});
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  Tensor t = a.t();
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.contiguous().to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(a.slice(1, 1, 3).to_vector<float>(), (std::vector<float>{1, 2, 4, 5}));
  EXPECT_EQ(a.select(0, 1).to_vector<float>(), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(a.unsqueeze(0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(a.reshape({-1}).shape(), (Shape{6}));
  EXPECT_THROW(a.view({4, 2}), Error);
  EXPECT_THROW(a.t().view({6}), Error);
  EXPECT_EQ(a.t().reshape({6}).to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(Tensor, BroadcastAddAndGrad) {
  Tensor a = rand_input({2, 3}, 1), b = rand_input({3}, 2);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& x) { return add(x[0], x[1]); }, {a, b}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& x) { return div(x[0], add(x[1], 3.0)); }, {a, b}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {a, b}));
  Tensor c = rand_input({4, 3, 5}, 3);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); },
                        {rand_input({2, 1, 4, 3}, 4), c}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& x) { return sum(x[0], {0, 2}, true); }, {c}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& x) { return var(x[0], {1}); }, {c}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& x) { return max(x[0], {2}); }, {c}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& x) { return x[0].permute({2, 0, 1}).slice(0, 1, 5, 2); }, {c}));
}

TEST(Tensor, ErrorsNameTheOp) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  try {
    add(a, b);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add: shapes [2, 3] and [4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(matmul(a, Tensor::zeros({2, 3})), Error);
  EXPECT_THROW(a.permute({0, 0}), Error);
  EXPECT_THROW(a.select(0, 5), Error);
}

// Sizes and strides may come from a file: a view that would reach past its storage, by plain
// excess or through an int64 overflow, is refused instead of wrapping around.
TEST(Tensor, FromStorageRefusesOutOfRangeViews) {
  auto storage = std::make_shared<shallow::Storage>(64, shallow::Device::cpu());  // 16 floats
  using shallow::DType;
  EXPECT_NO_THROW(shallow::Tensor::from_storage(storage, {4, 4}, DType::f32));
  EXPECT_NO_THROW(shallow::Tensor::from_storage(storage, {2, 2}, DType::f32, {8, 1}, 6));
  EXPECT_NO_THROW(shallow::Tensor::from_storage(storage, {0, 1000}, DType::f32, {1000, 1}, 99));
  EXPECT_THROW(shallow::Tensor::from_storage(storage, {4, 5}, DType::f32), shallow::Error);
  EXPECT_THROW(shallow::Tensor::from_storage(storage, {2, 2}, DType::f32, {8, 1}, 7),
               shallow::Error);
  EXPECT_THROW(shallow::Tensor::from_storage(storage, {1}, DType::f32, {}, -1), shallow::Error);
  const int64_t huge = int64_t(1) << 62;
  EXPECT_THROW(shallow::Tensor::from_storage(storage, {3}, DType::f32, {huge}), shallow::Error);
  EXPECT_THROW(shallow::Tensor::from_storage(storage, {2, 2}, DType::f32, {huge, huge}),
               shallow::Error);
  EXPECT_THROW(shallow::Tensor::from_storage(storage, {2}, DType::f64, {1}, huge),
               shallow::Error);
}
