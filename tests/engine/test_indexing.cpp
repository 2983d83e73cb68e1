// Indexing ops against PyTorch (tests/reference/ops_indexing.py), their gradients by finite
// differences, and the errors they give.
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

const Fixture& fx() {
  static const Fixture f("ops_indexing");
  return f;
}
Tensor F(const std::string& key) { return fx().get(key); }

// Checks the gradient of sum(out * w) against the one PyTorch stored under case.grad_<name>.
::testing::AssertionResult grad_matches(const Tensor& out, const std::string& name,
                                        const std::vector<std::pair<Tensor, std::string>>& inputs) {
  sum(mul(out, F(name + ".w"))).backward();
  for (const auto& [x, key] : inputs) {
    if (!x.grad().defined()) return ::testing::AssertionFailure() << key << " has no gradient";
    auto r = all_close(x.grad(), F(name + ".grad_" + key));
    if (!r) return r << " (gradient of " << key << ")";
  }
  return ::testing::AssertionSuccess();
}

Tensor leaf(const std::string& key) {
  Tensor t = F(key).clone().detach();
  t.set_requires_grad(true);
  return t;
}

Tensor ids(const std::vector<int64_t>& v, DType dtype = DType::i64) {
  return Tensor::from_vector(v, {int64_t(v.size())}).to(dtype);
}

}  // namespace

// ---------------------------------------------------------------- concat, stack, split

TEST(Indexing, ConcatMatchesTorch) {
  Tensor a = leaf("concat.a"), b = leaf("concat.b"), c = leaf("concat.c");
  EXPECT_TRUE(all_close(concat({a, b, c}, 1), F("concat.out"), 0, 0));
  EXPECT_TRUE(all_close(concat({a, a}, -1), F("concat.out_last"), 0, 0));
  // A transposed (non-contiguous) input.
  EXPECT_TRUE(all_close(concat({F("concat_t.p").t(), F("concat_t.q")}, 0), F("concat_t.out"), 0, 0));
}

TEST(Indexing, ConcatAnyDtypeBitExact) {
  Tensor x = Tensor::arange(6, DType::i32).reshape({2, 3});
  EXPECT_EQ(concat({x, x.slice(1, 1, 3)}, 1).to_vector<int32_t>(),
            (std::vector<int32_t>{0, 1, 2, 1, 2, 3, 4, 5, 4, 5}));
  Tensor h = F("concat.a").to(DType::bf16);
  Tensor hc = concat({h, h}, 0);
  EXPECT_EQ(hc.dtype(), DType::bf16);
  EXPECT_TRUE(all_close(hc.slice(0, 2, 4), h, 0, 0));
}

TEST(Indexing, StackMatchesTorch) {
  Tensor a = F("stack.a"), b = F("stack.b");
  for (int d : {0, 1, 2, -1})
    EXPECT_TRUE(all_close(stack({a, b, a}, d), F("stack.out" + std::to_string(d)), 0, 0)) << d;
}

TEST(Indexing, SplitMatchesTorchAndGivesViews) {
  Tensor x = F("split.x");
  std::vector<Tensor> by_size = split(x, 2, 0);
  ASSERT_EQ(by_size.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(all_close(by_size[i], F("split.size2_" + std::to_string(i)), 0, 0));
  std::vector<Tensor> by_sizes = split(x, {1, 3, 2}, 1);
  ASSERT_EQ(by_sizes.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(all_close(by_sizes[i], F("split.sizes_" + std::to_string(i)), 0, 0));
    EXPECT_EQ(by_sizes[i].storage(), x.storage()) << "pieces are views";
  }
  EXPECT_EQ(split(Tensor::zeros({0, 2}), 3, 0).size(), 1u);
  EXPECT_EQ(split(x, 6, 1).size(), 1u);
}

TEST(Indexing, JoinAndSplitGradients) {
  auto cat3 = [](const std::vector<Tensor>& v) { return concat({v[0], v[1].t(), v[2]}, 1); };
  EXPECT_TRUE(gradcheck(cat3, {rand_input({2, 3}, 1), rand_input({1, 2}, 2), rand_input({2, 2}, 3)}));
  auto stk = [](const std::vector<Tensor>& v) { return stack({v[0], v[1], v[0]}, 1); };
  EXPECT_TRUE(gradcheck(stk, {rand_input({2, 3}, 4), rand_input({2, 3}, 5)}));
  auto spl = [](const std::vector<Tensor>& v) {
    std::vector<Tensor> p = split(v[0], {2, 1, 2}, 1);
    return add(mul(p[0], p[2]), p[1]);  // each piece used, so each slice of the gradient matters
  };
  EXPECT_TRUE(gradcheck(spl, {rand_input({3, 5}, 6)}));
  auto spl2 = [](const std::vector<Tensor>& v) {
    std::vector<Tensor> p = split(v[0], 2, 0);
    return concat({mul(p[2], 3.0), p[0], p[1]}, 0);
  };
  EXPECT_TRUE(gradcheck(spl2, {rand_input({5, 2}, 7)}));
}

TEST(Indexing, JoinAndSplitErrors) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 3});
  EXPECT_ERROR_HAS(concat({a, b}, 1), "concat: tensor 1 has shape [3, 3] but tensor 0 has [2, 3]");
  EXPECT_ERROR_HAS(concat({a, Tensor::zeros({6})}, 0), "concat: tensor 1 has shape [6]");
  EXPECT_ERROR_HAS(concat({a, a.to(DType::f64)}, 0), "concat: dtypes differ");
  EXPECT_ERROR_HAS(concat({}, 0), "concat: expected at least one tensor");
  EXPECT_ERROR_HAS(concat({a}, 2), "concat: dim 2 is out of range");
  EXPECT_ERROR_HAS(stack({a, b}, 0), "stack: tensor 1 has shape [3, 3] but tensor 0 has [2, 3]");
  EXPECT_ERROR_HAS(stack({a}, 3), "stack: dim 3 is out of range");
  EXPECT_ERROR_HAS(split(a, {1, 1}, 1), "split: sizes [1, 1] add up to 2 but dim 1 of shape [2, 3]");
  EXPECT_ERROR_HAS(split(a, 0, 0), "split: split_size must be positive");
}

// ---------------------------------------------------------------- index_select, embedding

TEST(Indexing, IndexSelectMatchesTorch) {
  Tensor x = leaf("index_select.x");
  Tensor out = index_select(x, 1, F("index_select.idx1"));
  EXPECT_TRUE(all_close(out, F("index_select.out1"), 0, 0));
  EXPECT_TRUE(grad_matches(out, "index_select", {{x, "x"}}));  // repeated indices add up
  ASSERT_EQ(F("index_select.idx0").dtype(), DType::i32);
  EXPECT_TRUE(all_close(index_select(x, 0, F("index_select.idx0")), F("index_select.out0"), 0, 0));
  EXPECT_TRUE(all_close(index_select(x, -1, F("index_select.idx2")), F("index_select.out2"), 0, 0));
  // Non-contiguous input and index.
  Tensor xt = F("index_select.x").transpose(0, 2);  // [4, 3, 5]
  Tensor idx = ids({9, 2, 9, 0}).slice(0, 1, 4, 2);  // [2, 0]
  EXPECT_TRUE(all_close(index_select(xt, 2, idx),
                        index_select(xt.contiguous(), 2, ids({2, 0})), 0, 0));
  // A 0-D index keeps the dim, with size 1.
  EXPECT_EQ(index_select(x, 1, Tensor::scalar(2, DType::i64)).shape(), (Shape{5, 1, 4}));
}

TEST(Indexing, IndexSelectHalfAndIntegerBitExact) {
  Tensor x = F("index_select.x");
  for (DType dt : {DType::bf16, DType::f16, DType::f64, DType::i32, DType::u8}) {
    Tensor xh = x.to(dt);
    Tensor got = index_select(xh, 1, F("index_select.idx1"));
    EXPECT_EQ(got.dtype(), dt);
    EXPECT_TRUE(all_close(got, F("index_select.out1").to(dt), 0, 0)) << dtype_name(dt);
  }
}

TEST(Indexing, EmbeddingMatchesTorch) {
  Tensor w = leaf("embedding.weight");
  Tensor out = embedding(w, F("embedding.ids"));
  EXPECT_EQ(out.shape(), (Shape{2, 3, 4}));
  EXPECT_TRUE(all_close(out, F("embedding.out"), 0, 0));
  EXPECT_TRUE(grad_matches(out, "embedding", {{w, "weight"}}));
  // i32 ids and a bf16 table give the same rows.
  Tensor out16 = embedding(F("embedding.weight").to(DType::bf16), F("embedding.ids").to(DType::i32));
  EXPECT_TRUE(all_close(out16, F("embedding.out").to(DType::bf16), 0, 0));
}

TEST(Indexing, IndexAddIsExactWithManyRepeats) {
  // Every one of 600 rows picks row 1: its gradient is the sum of the 600 gradient rows.
  Tensor w = Tensor::zeros({3, 300});
  w.set_requires_grad(true);
  Tensor many = Tensor::full({600}, 1, DType::i64);
  embedding(w, many).backward(Tensor::ones({600, 300}));
  std::vector<float> g = w.grad().to_vector<float>();
  EXPECT_EQ(g[0], 0.0f);
  EXPECT_EQ(g[300], 600.0f);
  EXPECT_EQ(g[300 + 299], 600.0f);
  EXPECT_EQ(g[600], 0.0f);
}

TEST(Indexing, IndexSelectAndEmbeddingGradients) {
  Tensor idx = ids({2, 0, 2, 2, 1});
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return index_select(v[0], 1, idx); },
                        {rand_input({2, 3, 2}, 8)}));
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return index_select(v[0], 0, idx.to(DType::i32)); },
                        {rand_input({3, 2}, 9)}));
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return index_select(v[0].t(), -1, idx); },
                        {rand_input({3, 2}, 10)}));
  Tensor rows = Tensor::from_vector<int64_t>({3, 0, 3, 1, 3, 3}, {2, 3});
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return embedding(v[0], rows); },
                        {rand_input({4, 3}, 11)}));
}

TEST(Indexing, IndexErrorsNameOpValueAndSize) {
  Tensor x = Tensor::zeros({4, 3});
  EXPECT_ERROR_HAS(index_select(x, 0, ids({1, 4})), "index_select: index 4 is out of range for dim 0 of size 4");
  EXPECT_ERROR_HAS(index_select(x, 1, ids({-1})), "index_select: index -1 is out of range for dim 1 of size 3");
  EXPECT_ERROR_HAS(index_select(x, 0, ids({1}, DType::i32).to(DType::f32)), "index_select: indices must be i64 or i32, got f32");
  EXPECT_ERROR_HAS(index_select(x, 0, Tensor::zeros({2, 2}, DType::i64)), "index_select: the index must be 1-D, got shape [2, 2]");
  EXPECT_ERROR_HAS(index_select(x, 2, ids({0})), "index_select: dim 2 is out of range");
  EXPECT_ERROR_HAS(embedding(x, ids({0, 7})), "embedding: index 7 is out of range for dim 0 of size 4");
  EXPECT_ERROR_HAS(embedding(Tensor::zeros({4}), ids({0})), "embedding: weight must be 2-D");
  EXPECT_ERROR_HAS(embedding(x, Tensor::zeros({2})), "embedding: indices must be i64 or i32");

  // The check comes first: a failed op records nothing, so no gradient appears later.
  Tensor w = Tensor::ones({4, 3});
  w.set_requires_grad(true);
  EXPECT_THROW(embedding(w, ids({0, 1, 99, 2}, DType::i32)), Error);
  EXPECT_FALSE(w.grad().defined());
}

// ---------------------------------------------------------------- gather

TEST(Indexing, GatherMatchesTorch) {
  Tensor x = leaf("gather.x");
  Tensor out = gather(x, 1, F("gather.idx1"));
  EXPECT_TRUE(all_close(out, F("gather.out1"), 0, 0));
  EXPECT_TRUE(grad_matches(out, "gather", {{x, "x"}}));
  // The index is smaller than the input in dim 1.
  EXPECT_TRUE(all_close(gather(F("gather.x"), 0, F("gather.idx0")), F("gather.out0"), 0, 0));
  Tensor x3 = leaf("gather3.x");
  Tensor out3 = gather(x3, 1, F("gather3.idx"));
  EXPECT_TRUE(all_close(out3, F("gather3.out"), 0, 0));
  EXPECT_TRUE(grad_matches(out3, "gather3", {{x3, "x"}}));
  // Non-contiguous input, i32 index, bf16 data.
  Tensor xt = F("gather.x").t().contiguous().t();
  EXPECT_FALSE(xt.is_contiguous());
  EXPECT_TRUE(all_close(gather(xt.to(DType::bf16), -1, F("gather.idx1").to(DType::i32)),
                        F("gather.out1").to(DType::bf16), 0, 0));
}

TEST(Indexing, GatherGradients) {
  Tensor i1 = Tensor::from_vector<int64_t>({0, 2, 2, 1, 1, 1}, {2, 3});
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return gather(v[0], 1, i1); },
                        {rand_input({2, 3}, 12)}));
  // Index smaller than the input in the other dim: rows never reached get a zero gradient.
  Tensor i0 = Tensor::from_vector<int32_t>({2, 0, 2, 2}, {2, 2});
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return gather(v[0], 0, i0); },
                        {rand_input({3, 3}, 13)}));
  Tensor i3 = Tensor::from_vector<int64_t>({1, 0, 1, 1, 0, 0, 1, 1}, {2, 2, 2});
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return gather(v[0].permute({1, 0, 2}), 2, i3); },
                        {rand_input({2, 2, 3}, 14)}));
}

TEST(Indexing, GatherErrors) {
  Tensor x = Tensor::zeros({3, 4});
  EXPECT_ERROR_HAS(gather(x, 1, Tensor::from_vector<int64_t>({0, 4}, {1, 2})),
                   "gather: index 4 is out of range for dim 1 of size 4");
  EXPECT_ERROR_HAS(gather(x, 0, Tensor::from_vector<int64_t>({-2}, {1, 1})),
                   "gather: index -2 is out of range for dim 0 of size 3");
  EXPECT_ERROR_HAS(gather(x, 1, ids({0})), "gather: the index [1] must have as many dims as the input [3, 4]");
  EXPECT_ERROR_HAS(gather(x, 1, Tensor::zeros({4, 1}, DType::i64)),
                   "gather: the index [4, 1] is larger than the input [3, 4] in dim 0");
  EXPECT_ERROR_HAS(gather(x, 1, Tensor::zeros({3, 1}, DType::u8)), "gather: indices must be i64 or i32, got u8");
}

// ---------------------------------------------------------------- where, masked_fill

TEST(Indexing, WhereMatchesTorch) {
  Tensor a = leaf("where.a"), b = leaf("where.b");
  ASSERT_EQ(F("where.cond").dtype(), DType::u8);
  Tensor out = where(F("where.cond"), a, b);
  EXPECT_TRUE(all_close(out, F("where.out"), 0, 0));
  EXPECT_TRUE(grad_matches(out, "where", {{a, "a"}, {b, "b"}}));  // a's gradient is summed over rows
  // A float condition: -0.0 is false, NaN is true.
  EXPECT_TRUE(all_close(where(F("where_f.cond"), F("where_f.a"), F("where_f.b")), F("where_f.out"), 0, 0));
  EXPECT_TRUE(all_close(where(F("where_f.cond").to(DType::bf16), F("where_f.a"), F("where_f.b")),
                        F("where_f.out"), 0, 0));
  EXPECT_TRUE(all_close(where(F("where_f.cond").to(DType::f64), F("where_f.a").to(DType::f16),
                              F("where_f.b").to(DType::f16)),
                        F("where_f.out").to(DType::f16), 0, 0));
  // Non-contiguous operands.
  Tensor bt = F("where.b").t().contiguous().t();
  EXPECT_TRUE(all_close(where(F("where.cond"), F("where.a"), bt), F("where.out"), 0, 0));
}

TEST(Indexing, MaskedFillMatchesTorch) {
  Tensor x = leaf("masked_fill.x");
  Tensor out = masked_fill(x, F("masked_fill.mask"), -1e4);
  EXPECT_TRUE(all_close(out, F("masked_fill.out"), 0, 0));
  EXPECT_TRUE(grad_matches(out, "masked_fill", {{x, "x"}}));
  Tensor inf = masked_fill(F("masked_fill.x"), F("masked_fill.mask"), -INFINITY);
  EXPECT_TRUE(all_close(inf, F("masked_fill.out_inf"), 0, 0));
  EXPECT_TRUE(std::isinf(inf.to_vector<float>()[0]));
}

TEST(Indexing, WhereAndMaskedFillGradients) {
  Tensor cond = Tensor::from_vector<uint8_t>({1, 0, 0, 1, 1, 0}, {2, 3});
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return where(cond, v[0], v[1]); },
                        {rand_input({2, 3}, 15), rand_input({2, 3}, 16)}));
  // Broadcasting: a over rows, b a scalar, cond a column.
  Tensor col = Tensor::from_vector<double>({0.0, 3.0}, {2, 1});
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return where(col, v[0], v[1]); },
                        {rand_input({3}, 17), rand_input({}, 18)}));
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& v) { return masked_fill(v[0].t(), cond.t(), 5.0); },
                        {rand_input({2, 3}, 19)}));
}

TEST(Indexing, WhereErrors) {
  Tensor a = Tensor::zeros({2, 3});
  EXPECT_ERROR_HAS(where(Tensor::zeros({4}, DType::u8), a, a),
                   "where: shapes [4] (condition), [2, 3] and [2, 3] cannot be broadcast together");
  EXPECT_ERROR_HAS(where(Tensor::zeros({3}, DType::u8), a, Tensor::zeros({2})),
                   "where: shapes [3] (condition), [2, 3] and [2] cannot be broadcast together");
  EXPECT_ERROR_HAS(where(Tensor::zeros({3}, DType::i64), a, a), "where: the condition must be u8 or floating-point");
  EXPECT_ERROR_HAS(where(Tensor::zeros({3}, DType::u8), a, a.to(DType::f64)), "where: dtypes differ");
  EXPECT_ERROR_HAS(masked_fill(a, Tensor::zeros({2, 2, 3}, DType::u8), 0.0),
                   "masked_fill: the mask [2, 2, 3] cannot be broadcast to the input's shape [2, 3]");
  EXPECT_ERROR_HAS(masked_fill(a, Tensor::zeros({2}, DType::u8), 0.0), "masked_fill: shapes [2] and [2, 3]");
  EXPECT_ERROR_HAS(masked_fill(a, Tensor::zeros({3}, DType::i32), 0.0), "masked_fill: the condition must be u8");
}
