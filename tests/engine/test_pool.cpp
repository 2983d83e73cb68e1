// avg_pool2d, max_pool2d, adaptive_avg_pool2d: forward and gradients against PyTorch,
// gradcheck per configuration class, strided inputs, and bad arguments.
#include <gtest/gtest.h>

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

// The same values stored with the last two dims swapped.
Tensor transposed_copy(const Tensor& x) { return x.transpose(-1, -2).contiguous().transpose(-1, -2); }

Int2 int2(const nlohmann::json& j) { return {j[0].get<int64_t>(), j[1].get<int64_t>()}; }

nlohmann::json cases(const Fixture& f, const char* family) {
  return nlohmann::json::parse(f.metadata().at("cases"))[family];
}

// Checks the forward on a contiguous and a transposed layout, and the gradient, for one case.
template <class Op>
void check_case(const Fixture& f, const std::string& key, Op op) {
  SCOPED_TRACE(key);
  const Tensor x = f.get(key + ".x"), expected = f.get(key + ".y");
  EXPECT_TRUE(all_close(op(x), expected, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(op(transposed_copy(x)), expected, 1e-5, 1e-5));
  Tensor xl = x.clone().set_requires_grad(true);
  op(xl).backward(f.get(key + ".gy"));
  EXPECT_TRUE(all_close(xl.grad(), f.get(key + ".gx"), 1e-5, 1e-5));
}

}  // namespace

TEST(AvgPool2d, MatchesPyTorch) {
  Fixture f("ops_pool");
  const auto list = cases(f, "avg");
  ASSERT_GE(list.size(), 8u);
  for (const auto& c : list)
    check_case(f, "avg." + c["name"].get<std::string>(), [&](const Tensor& x) {
      return avg_pool2d(x, int2(c["kernel"]), int2(c["stride"]), int2(c["padding"]),
                        c["ceil_mode"], c["count_include_pad"]);
    });
}

TEST(MaxPool2d, MatchesPyTorch) {
  Fixture f("ops_pool");
  const auto list = cases(f, "max");
  ASSERT_GE(list.size(), 7u);
  for (const auto& c : list)
    check_case(f, "max." + c["name"].get<std::string>(), [&](const Tensor& x) {
      return max_pool2d(x, int2(c["kernel"]), int2(c["stride"]), int2(c["padding"]),
                        int2(c["dilation"]), c["ceil_mode"]);
    });
}

TEST(AdaptiveAvgPool2d, MatchesPyTorch) {
  Fixture f("ops_pool");
  const auto list = cases(f, "adaptive");
  ASSERT_GE(list.size(), 5u);
  for (const auto& c : list)
    check_case(f, "adaptive." + c["name"].get<std::string>(),
               [&](const Tensor& x) { return adaptive_avg_pool2d(x, int2(c["output_size"])); });
}

TEST(Pool2d, Gradcheck) {
  const Tensor x = rand_input({2, 2, 5, 6}, 1);
  auto check = [&](const char* what, auto op) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& t) { return op(t[0]); }, {x}));
  };
  check("avg", [](const Tensor& t) { return avg_pool2d(t, {2, 3}); });
  check("avg ceil pad", [](const Tensor& t) { return avg_pool2d(t, {3, 3}, {2, 2}, {1, 1}, true, true); });
  check("avg exclude pad", [](const Tensor& t) { return avg_pool2d(t, {3, 2}, {2, 1}, {1, 1}, true, false); });
  // Random inputs have no ties, so finite differences see the same argmax.
  check("max", [](const Tensor& t) { return max_pool2d(t, {2, 2}); });
  check("max overlapping", [](const Tensor& t) { return max_pool2d(t, {3, 3}, {1, 2}, {1, 1}); });
  check("max dilation ceil", [](const Tensor& t) {
    return max_pool2d(t, {2, 3}, {2, 1}, {1, 1}, {2, 2}, true);
  });
  check("adaptive down", [](const Tensor& t) { return adaptive_avg_pool2d(t, {3, 4}); });
  check("adaptive up", [](const Tensor& t) { return adaptive_avg_pool2d(t, {7, 8}); });
  check("adaptive global 3-D", [](const Tensor& t) { return adaptive_avg_pool2d(t.select(0, 1), {1, 1}); });
}

TEST(Pool2d, HalfInputsComputeInF32) {
  Tensor x = rand_input({1, 2, 6, 6}, 1).detach().to(DType::f32);
  Tensor y = max_pool2d(x.to(DType::f16), {2, 2});
  EXPECT_EQ(y.dtype(), DType::f16);
  EXPECT_TRUE(all_close(y.to(DType::f32), max_pool2d(x, {2, 2}), 1e-3, 1e-3));
  EXPECT_TRUE(all_close(avg_pool2d(x.to(DType::bf16), {3, 3}).to(DType::f32), avg_pool2d(x, {3, 3}), 0.02, 0.02));
}

TEST(Pool2d, BadArgumentsRaise) {
  const Tensor x = Tensor::zeros({2, 3, 5, 5});
  auto msg = error_of([&] { avg_pool2d(x, {6, 2}); });
  EXPECT_NE(msg.find("avg_pool2d: kernel (6, 2)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("larger than the input [2, 3, 5, 5]"), std::string::npos) << msg;
  EXPECT_EQ(error_of([&] { avg_pool2d(x, {6, 2}, {1, 1}, {1, 0}); }), "");  // fits once padded
  msg = error_of([&] { max_pool2d(x, {3, 3}, {1, 1}, {0, 0}, {3, 1}); });
  EXPECT_NE(msg.find("max_pool2d: kernel (3, 3) with dilation (3, 1)"), std::string::npos) << msg;
  msg = error_of([&] { max_pool2d(x, {3, 3}, {1, 1}, {2, 0}); });
  EXPECT_NE(msg.find("max_pool2d: padding (2, 0) must be between 0 and half the kernel"),
            std::string::npos) << msg;
  EXPECT_NE(error_of([&] { avg_pool2d(x, {0, 2}); }).find("avg_pool2d: kernel, stride"), std::string::npos);
  EXPECT_NE(error_of([&] { max_pool2d(x, {2, 2}, {-1, 1}); }).find("must be positive"), std::string::npos);
  msg = error_of([&] { avg_pool2d(Tensor::zeros({5, 5}), {2, 2}); });
  EXPECT_NE(msg.find("avg_pool2d: input must be 3-D [C, H, W] or 4-D [N, C, H, W], got [5, 5]"),
            std::string::npos) << msg;
  EXPECT_NE(error_of([&] { adaptive_avg_pool2d(x, {0, 2}); }).find("adaptive_avg_pool2d: output size"),
            std::string::npos);
  EXPECT_NE(error_of([&] { adaptive_avg_pool2d(Tensor::zeros({1, 2, 0, 3}), {1, 1}); }).find("is empty"),
            std::string::npos);
  EXPECT_NE(error_of([&] { max_pool2d(x.to(DType::i64), {2, 2}); }).find("floating-point"),
            std::string::npos);
}
