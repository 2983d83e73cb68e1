// The float attention kernel at the edges of its tiles and register blocks: sequence lengths
// 1, tile - 1, tile and tile + 1 for queries and keys, head dims around the 16-float vectors,
// masks and the causal mask, forward and gradients against the unfused matmul-softmax-matmul
// in f64. Also its vectorized exp, and the agreement of its one-pass and two-pass backwards.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "engine/ops.h"
#include "kernels/cpu/attention_f32.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradcheck.h"

using namespace shallow;
using shallow::testing::all_close;
using shallow::testing::rand_input;

namespace {

constexpr int64_t kQ = cpu::attention_detail::kQueryTileF32;
constexpr int64_t kK = cpu::attention_detail::kKeyTileF32;

enum class Masking { none, keep, additive, causal, causal_and_keep };

const char* masking_name(Masking m) {
  switch (m) {
    case Masking::none: return "none";
    case Masking::keep: return "u8 mask";
    case Masking::additive: return "additive mask";
    case Masking::causal: return "causal";
    case Masking::causal_and_keep: return "causal and u8 mask";
  }
  return "";
}

struct Case {
  int64_t Lq, Lk, E, Ev;
  Masking masking;
};

// A mask of [Lq, Lk] (shared by the batch entries) that leaves key 0 to every row, so that
// the reference's softmax has no empty row: its u8 form and the additive f64 form the
// reference adds to the scores (causal included).
struct Masks {
  Tensor given;        // what the fused op gets (undefined for none/causal)
  Tensor reference;    // f64 [Lq, Lk], 0 or the additive value or -inf
};

Masks make_masks(const Case& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const bool keep = c.masking == Masking::keep || c.masking == Masking::causal_and_keep;
  const bool causal = c.masking == Masking::causal || c.masking == Masking::causal_and_keep;
  std::vector<uint8_t> keep_v(size_t(c.Lq * c.Lk), 1);
  std::vector<float> add_v(size_t(c.Lq * c.Lk), 0.0f);
  std::vector<double> ref(size_t(c.Lq * c.Lk), 0.0);
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < c.Lq; ++i)
    for (int64_t j = 0; j < c.Lk; ++j) {
      const size_t at = size_t(i * c.Lk + j);
      if (keep && j > 0 && u(rng) < 0.3) keep_v[at] = 0, ref[at] = -inf;
      if (c.masking == Masking::additive) {
        add_v[at] = j > 0 && u(rng) < 0.2 ? -std::numeric_limits<float>::infinity()
                                          : float(4.0 * u(rng) - 2.0);
        ref[at] = double(add_v[at]);
      }
      if (causal && j > i) ref[at] = -inf;
    }
  Masks m;
  if (keep) m.given = Tensor::from_vector(keep_v, {c.Lq, c.Lk});
  if (c.masking == Masking::additive) m.given = Tensor::from_vector(add_v, {c.Lq, c.Lk});
  m.reference = Tensor::from_vector(ref, {c.Lq, c.Lk});
  return m;
}

std::string describe(const Case& c) {
  return "Lq " + std::to_string(c.Lq) + ", Lk " + std::to_string(c.Lk) + ", E " +
         std::to_string(c.E) + ", Ev " + std::to_string(c.Ev) + ", " + masking_name(c.masking);
}

// Forward and the three gradients of the float fused op against the f64 unfused reference
// made from the same (float-rounded) values.
void check_against_unfused(const Case& c, uint64_t seed) {
  SCOPED_TRACE(describe(c));
  const int64_t batch = 2;
  const Tensor q64 = rand_input({batch, c.Lq, c.E}, seed).detach().to(DType::f32).to(DType::f64);
  const Tensor k64 = rand_input({batch, c.Lk, c.E}, seed + 1).detach().to(DType::f32).to(DType::f64);
  const Tensor v64 = rand_input({batch, c.Lk, c.Ev}, seed + 2).detach().to(DType::f32).to(DType::f64);
  const Tensor g64 = rand_input({batch, c.Lq, c.Ev}, seed + 3).detach().to(DType::f32).to(DType::f64);
  const Masks masks = make_masks(c, seed + 4);
  const bool causal = c.masking == Masking::causal || c.masking == Masking::causal_and_keep;
  const double scale = 1.0 / std::sqrt(double(c.E));

  Tensor rq = q64.clone().set_requires_grad(true), rk = k64.clone().set_requires_grad(true),
         rv = v64.clone().set_requires_grad(true);
  const Tensor scores = add(mul(matmul(rq, rk.transpose(-1, -2)), scale), masks.reference);
  const Tensor expected = matmul(softmax(scores, -1), rv);
  expected.backward(g64);

  Tensor q = q64.to(DType::f32).set_requires_grad(true), k = k64.to(DType::f32).set_requires_grad(true),
         v = v64.to(DType::f32).set_requires_grad(true);
  const Tensor out = scaled_dot_product_attention(q, k, v, masks.given, causal);
  out.backward(g64.to(DType::f32));
  EXPECT_TRUE(all_close(out, expected, 2e-6, 2e-5)) << "forward";
  EXPECT_TRUE(all_close(q.grad(), rq.grad(), 1e-5, 1e-4)) << "dq";
  EXPECT_TRUE(all_close(k.grad(), rk.grad(), 1e-5, 1e-4)) << "dk";
  EXPECT_TRUE(all_close(v.grad(), rv.grad(), 1e-5, 1e-4)) << "dv";
}

const Masking kAllMaskings[] = {Masking::none, Masking::keep, Masking::additive, Masking::causal,
                                Masking::causal_and_keep};

}  // namespace

TEST(AttentionTiles, SequenceLengthsAtTileEdges) {
  uint64_t seed = 100;
  for (int64_t Lq : {int64_t(1), kQ - 1, kQ, kQ + 1})
    for (int64_t Lk : {int64_t(1), kK - 1, kK, kK + 1})
      for (Masking m : kAllMaskings) check_against_unfused({Lq, Lk, 17, 17, m}, seed += 10);
}

TEST(AttentionTiles, HeadDimsAroundVectors) {
  uint64_t seed = 5000;
  for (int64_t E : {1, 15, 16, 17, 64, 80})
    for (Masking m : {Masking::none, Masking::causal_and_keep, Masking::additive})
      check_against_unfused({kQ + 1, kK + 1, E, E, m}, seed += 10);
  // Values narrower or wider than the keys.
  check_against_unfused({kQ - 1, kK - 1, 64, 15, Masking::causal}, 6000);
  check_against_unfused({7, 33, 16, 80, Masking::keep}, 6010);
  check_against_unfused({kQ + 1, 3, 1, 17, Masking::none}, 6020);
}

// One pass per entry (entries >= 2 x threads) and the two passes (fewer entries) must give the
// same bits: each (query tile, key tile) pair is met in the same order either way.
TEST(AttentionTiles, BackwardSchedulesAgreeExactly) {
  const int before = num_threads();
  const Tensor q = rand_input({3, kQ + 5, 16}, 1).detach().to(DType::f32);
  const Tensor k = rand_input({3, kK + 9, 16}, 2).detach().to(DType::f32);
  const Tensor v = rand_input({3, kK + 9, 20}, 3).detach().to(DType::f32);
  const Tensor keep = gt(rand_input({kQ + 5, kK + 9}, 4).detach(), Tensor::scalar(-0.5, DType::f64)).to(DType::u8);
  auto run = [&] {
    Tensor ql = q.clone().set_requires_grad(true), kl = k.clone().set_requires_grad(true),
           vl = v.clone().set_requires_grad(true);
    Tensor out = scaled_dot_product_attention(ql, kl, vl, keep, true);
    sum(mul(out, out)).backward();
    return std::vector<Tensor>{out, ql.grad(), kl.grad(), vl.grad()};
  };
  set_num_threads(1);  // 3 entries on 1 thread: one pass
  const auto one = run();
  for (int n : {2, 5}) {  // fewer than 2 entries per thread: two passes
    set_num_threads(n);
    const auto many = run();
    for (size_t i = 0; i < one.size(); ++i)
      EXPECT_TRUE(all_close(many[i], one[i], 0, 0)) << n << " threads, tensor " << i;
  }
  set_num_threads(before);
}

TEST(AttentionTiles, VectorizedExp) {
  // Every 2^-10 over [-88, 0] (the normal range the softmax sees) and a few more points.
  std::vector<float> x;
  for (double t = -88.0; t <= 0.0; t += 1.0 / 1024) x.push_back(float(t));
  for (float t : {-1e-7f, -1e-30f, -0.34657359f, -0.34657360f, -87.33f}) x.push_back(t);
  std::vector<float> y(x.size());
  cpu::attention_detail::exp_f32(x.data(), y.data(), int64_t(x.size()));
  // Error in units of the float spacing at the exact value: at most 1 (0.93 measured).
  double worst_ulps = 0, worst_relative = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(double(x[i]));
    const float near = float(want);
    const double ulp = double(std::nextafter(near, 1.0f)) - double(near);
    worst_ulps = std::max(worst_ulps, std::abs(double(y[i]) - want) / ulp);
    worst_relative = std::max(worst_relative, std::abs(double(y[i]) - want) / want);
  }
  EXPECT_LE(worst_ulps, 1.0);
  EXPECT_LT(worst_relative, 2e-7);

  // The edges: 0 exactly 1, the denormal range within one denormal step, and far below (-inf
  // included) exactly 0; NaN stays NaN.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> edge = {0.0f, -0.0f, -95.0f, -100.0f, -103.0f, -104.0f, -150.0f, -1e4f,
                             -3e38f, -inf, std::nanf("")};
  std::vector<float> out(edge.size());
  cpu::attention_detail::exp_f32(edge.data(), out.data(), int64_t(edge.size()));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 1.0f);
  for (size_t i = 2; i < 5; ++i)
    EXPECT_NEAR(out[i], std::exp(edge[i]), std::numeric_limits<float>::denorm_min()) << edge[i];
  for (size_t i = 5; i < 10; ++i) EXPECT_EQ(out[i], 0.0f) << edge[i];
  EXPECT_TRUE(std::isnan(out[10]));
}
