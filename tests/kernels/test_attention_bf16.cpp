// The bf16 attention forward against the float kernel run on the same bf16 values widened to
// f32: sizes 1 and around the tiles (72 query rows, 256 keys, 64-column blocks, pairs of keys),
// odd key counts, causal, operands read through strides and offsets as a fused qkv projection
// lays them out, several batch entries on two threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_bf16.h"
#include "kernels/cpu/parallel.h"

using namespace shallow::cpu;

namespace {

struct Shape {
  int64_t batch, Lq, Lk, E, Ev;
};

std::string name_of(const Shape& s, bool causal) {
  return std::to_string(s.batch) + "x" + std::to_string(s.Lq) + "x" + std::to_string(s.Lk) + " E " +
         std::to_string(s.E) + " Ev " + std::to_string(s.Ev) + (causal ? " causal" : "");
}

// q, k and v of every entry live in one buffer as a qkv projection writes them: row i of entry
// b holds q (E), k (E), v (Ev) side by side, so each operand has row stride 2E + Ev.
void check(const Shape& s, bool causal, std::mt19937& rng) {
  const int64_t L = std::max(s.Lq, s.Lk), ld = 2 * s.E + s.Ev;
  std::normal_distribution<float> normal;
  std::vector<bf16> qkv(size_t(s.batch * L * ld));
  for (bf16& x : qkv) x = bf16(2.0f * normal(rng));
  std::vector<float> wide(qkv.size());
  for (size_t i = 0; i < qkv.size(); ++i) wide[i] = float(qkv[i]);
  std::vector<int64_t> q_off(size_t(s.batch)), k_off(q_off.size()), v_off(q_off.size());
  for (int64_t b = 0; b < s.batch; ++b) {
    q_off[size_t(b)] = b * L * ld;
    k_off[size_t(b)] = q_off[size_t(b)] + s.E;
    v_off[size_t(b)] = q_off[size_t(b)] + 2 * s.E;
  }
  const float scale = 1.0f / std::sqrt(float(s.E));
  auto args = [&]<class T>(const T* base) {
    AttentionArgs<T> a;
    a.batch = s.batch, a.Lq = s.Lq, a.Lk = s.Lk, a.E = s.E, a.Ev = s.Ev;
    a.scale = T(scale);
    a.causal = causal;
    a.q = base, a.q_offset = q_off.data(), a.q_ld = ld;
    a.k = base, a.k_offset = k_off.data(), a.k_ld = ld;
    a.v = base, a.v_offset = v_off.data(), a.v_ld = ld;
    return a;
  };
  std::vector<float> want(size_t(s.batch * s.Lq * s.Ev)), lse(size_t(s.batch * s.Lq));
  attention_forward<float>(args(wide.data()), want.data(), lse.data());
  std::vector<bf16> got(want.size(), bf16(NAN));
  attention_forward_bf16(args(qkv.data()), scale, got.data());

  float v_max = 0.0f;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t j = 0; j < s.Lk; ++j)
      for (int64_t e = 0; e < s.Ev; ++e)
        v_max = std::max(v_max, std::abs(wide[size_t(v_off[size_t(b)] + j * ld + e)]));
  // The probabilities are rounded to bf16 (2^-9 relative each, and they sum to 1), then the
  // output once: |error| <= 2^-9 max|v| + 2^-9 |out|, with room for the f32 sums' order.
  int bad = 0;
  for (size_t i = 0; i < want.size() && bad < 5; ++i) {
    const float tol = 1.5f * std::ldexp(1.0f, -9) * (v_max + std::abs(want[i])) + 1e-6f;
    if (!(std::abs(float(got[i]) - want[i]) <= tol)) {
      ADD_FAILURE() << name_of(s, causal) << " at " << i << ": got " << float(got[i]) << ", want "
                    << want[i] << " +- " << tol;
      ++bad;
    }
  }
}

}  // namespace

TEST(AttentionBf16, MatchesTheFloatKernelOnTheSameValues) {
  if (!attention_bf16_available()) GTEST_SKIP() << "this CPU or build has no AVX512_BF16";
  std::mt19937 rng(5);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const Shape& s : {Shape{1, 1, 1, 2, 1}, Shape{2, 5, 3, 4, 17}, Shape{1, 72, 255, 64, 64},
                           Shape{3, 73, 256, 64, 64}, Shape{1, 71, 257, 34, 80},
                           Shape{2, 197, 197, 64, 64}, Shape{1, 30, 600, 16, 65},
                           Shape{1, 300, 300, 8, 16}})
      for (bool causal : {false, true}) check(s, causal, rng);
  }
  set_num_threads(0);
}
