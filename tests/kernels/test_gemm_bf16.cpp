// gemm_bf16 against an f64 product of the same bf16 values, on both micro-kernels: every
// transpose combination, sizes 1 and around the register and cache blocks, padded row strides,
// bias, f32 and bf16 output, a pre-packed B reused, batches.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/parallel.h"

using namespace shallow::cpu;

namespace {

// A bf16 matrix of `rows` x `cols` stored with row stride `ld` >= cols; padding holds NaN so
// that a kernel reading past the matrix shows it.
struct Matrix {
  int64_t rows, cols, ld;
  std::vector<bf16> v;
  Matrix(int64_t r, int64_t c, int64_t pad, std::mt19937& rng) : rows(r), cols(c), ld(c + pad) {
    std::normal_distribution<float> normal;
    v.assign(size_t(std::max<int64_t>(1, rows * ld)), bf16(NAN));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) v[size_t(i * ld + j)] = bf16(normal(rng));
  }
  double at(int64_t i, int64_t j) const { return double(float(v[size_t(i * ld + j)])); }
};

struct Reference {
  std::vector<double> value, magnitude;  // the exact product and sum |a||b| (+ |bias|)
};

Reference reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const Matrix& A,
                    const Matrix& B, const std::vector<float>* bias) {
  Reference r;
  r.value.assign(size_t(M * N), 0.0);
  r.magnitude.assign(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = bias ? (*bias)[size_t(j)] : 0.0, m = std::abs(s);
      for (int64_t k = 0; k < K; ++k) {
        const double p = (ta ? A.at(k, i) : A.at(i, k)) * (tb ? B.at(j, k) : B.at(k, j));
        s += p, m += std::abs(p);
      }
      r.value[size_t(i * N + j)] = s, r.magnitude[size_t(i * N + j)] = m;
    }
  return r;
}

// f32 accumulation of K products (each exact in f32) and the bias: at most K + 1 roundings of
// partial sums bounded by the magnitude.
double f32_bound(int64_t K, double magnitude) { return double(K + 2) * std::ldexp(1.0, -24) * magnitude; }

struct Case {
  int64_t M, N, K;
};

// Sizes 1, the micro-tile (12 x 32) and one off, the k block (1024) and one off, the packed
// rows of A (144) and the column block of sums (512) and one off, odd K; and all three blocks
// crossed at once (several k blocks summed through the tile, rows and columns past a block).
const Case kCases[] = {{1, 1, 1},     {1, 33, 7},     {13, 31, 3},    {12, 32, 256}, {11, 33, 257},
                       {145, 65, 20}, {25, 513, 9},   {7, 5, 513},    {143, 511, 2}, {144, 512, 258},
                       {3, 1, 600},   {1, 700, 255},  {13, 33, 1024}, {5, 40, 1025}, {2, 70, 2049},
                       {146, 520, 1030}};

class GemmBf16 : public ::testing::TestWithParam<GemmBf16Path> {
 protected:
  void SetUp() override {
    if (GetParam() == GemmBf16Path::avx512_bf16 && !gemm_bf16_avx512_available())
      GTEST_SKIP() << "this CPU or build has no AVX512_BF16";
    set_gemm_bf16_path(GetParam());
  }
  void TearDown() override { set_gemm_bf16_path(GemmBf16Path::automatic); }
};

std::string name_of(const Case& c, bool ta, bool tb) {
  return std::to_string(c.M) + "x" + std::to_string(c.N) + "x" + std::to_string(c.K) +
         (ta ? " A^T" : "") + (tb ? " B^T" : "");
}

TEST_P(GemmBf16, MatchesF64ReferenceForEveryTransposeAndSize) {
  std::mt19937 rng(7);
  for (const Case& c : kCases)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const std::string name = name_of(c, ta, tb);
        const Matrix A(ta ? c.K : c.M, ta ? c.M : c.K, 3, rng);
        const Matrix B(tb ? c.N : c.K, tb ? c.K : c.N, 1, rng);
        std::vector<float> bias(size_t(c.N));
        for (float& b : bias) b = float(rng() % 1000) / 250.0f - 2.0f;
        const bool with_bias = (c.M + c.N) % 2 == 0;
        const Reference ref = reference(ta, tb, c.M, c.N, c.K, A, B, with_bias ? &bias : nullptr);

        const int64_t ldc = c.N + 2;
        std::vector<float> out(size_t(c.M * ldc), NAN);
        std::vector<bf16> out16(size_t(c.M * ldc), bf16(NAN));
        gemm_bf16<float>(ta, tb, c.M, c.N, c.K, A.v.data(), A.ld, B.v.data(), B.ld,
                         with_bias ? bias.data() : nullptr, out.data(), ldc);
        gemm_bf16<bf16>(ta, tb, c.M, c.N, c.K, A.v.data(), A.ld, B.v.data(), B.ld,
                        with_bias ? bias.data() : nullptr, out16.data(), ldc);
        int bad = 0;
        for (int64_t i = 0; i < c.M && bad < 5; ++i)
          for (int64_t j = 0; j < c.N && bad < 5; ++j) {
            const double want = ref.value[size_t(i * c.N + j)];
            const double tol = f32_bound(c.K, ref.magnitude[size_t(i * c.N + j)]);
            const float got = out[size_t(i * ldc + j)];
            if (!(std::abs(got - want) <= tol)) {
              ADD_FAILURE() << name << " C[" << i << "," << j << "] = " << got << ", want " << want
                            << " +- " << tol;
              ++bad;
            }
            // The bf16 output is the same f32 sum rounded once.
            const bf16 got16 = out16[size_t(i * ldc + j)];
            if (got16.bits != bf16(got).bits) {
              ADD_FAILURE() << name << " bf16 C[" << i << "," << j << "] = " << float(got16)
                            << ", want " << got << " rounded to bf16";
              ++bad;
            }
          }
        // Nothing written past N in a row with a wider stride.
        for (int64_t i = 0; i < c.M; ++i)
          for (int64_t j = c.N; j < ldc; ++j) ASSERT_TRUE(std::isnan(out[size_t(i * ldc + j)])) << name;
      }
}

TEST_P(GemmBf16, PackedBReusedOverCallsAndBatches) {
  std::mt19937 rng(11);
  const int64_t M = 30, N = 70, K = 45, batch = 3;
  const Matrix B(N, K, 0, rng);  // [N, K]: a linear layer's weight, used transposed
  const PackedBf16B packed(true, K, N, B.v.data(), B.ld);
  EXPECT_EQ(packed.K(), K);
  EXPECT_EQ(packed.N(), N);
  const Matrix A(batch * M, K, 0, rng);
  std::vector<float> out(size_t(batch * M * N)), again(size_t(M * N));
  gemm_bf16_batched<float>(batch, false, true, M, N, K, A.v.data(), K, M * K, B.v.data(), K, 0,
                           nullptr, out.data(), N, M * N);
  for (int64_t b = 0; b < batch; ++b) {
    const Matrix Ab = [&] {
      Matrix m = A;
      m.rows = M;
      m.v.assign(A.v.begin() + b * M * K, A.v.begin() + (b + 1) * M * K);
      return m;
    }();
    const Reference ref = reference(false, true, M, N, K, Ab, B, nullptr);
    gemm_bf16_packed<float>(false, M, Ab.v.data(), K, packed, nullptr, again.data(), N);
    for (int64_t i = 0; i < M * N; ++i) {
      ASSERT_NEAR(out[size_t(b * M * N + i)], ref.value[size_t(i)],
                  f32_bound(K, ref.magnitude[size_t(i)]))
          << "batch " << b << " element " << i;
      // The same packed panels and the same kernel: the same bits.
      ASSERT_EQ(again[size_t(i)], out[size_t(b * M * N + i)]) << "batch " << b << " element " << i;
    }
  }
  // Batches with their own B each.
  const Matrix Bs(batch * K, N, 0, rng);
  gemm_bf16_batched<float>(batch, false, false, M, N, K, A.v.data(), K, M * K, Bs.v.data(), N,
                           K * N, nullptr, out.data(), N, M * N);
  Matrix A1 = A, B1 = Bs;
  A1.v.assign(A.v.begin() + 2 * M * K, A.v.end());
  B1.v.assign(Bs.v.begin() + 2 * K * N, Bs.v.end());
  A1.rows = M, B1.rows = K;
  const Reference ref = reference(false, false, M, N, K, A1, B1, nullptr);
  for (int64_t i = 0; i < M * N; ++i)
    ASSERT_NEAR(out[size_t(2 * M * N + i)], ref.value[size_t(i)], f32_bound(K, ref.magnitude[size_t(i)]));
}

// Where every thread takes all the rows (one thread, or two splitting the columns of a product
// with few rows), gemm_bf16 packs each panel of B as it goes instead of all of B first: the same
// sums in the same order as the pre-packed path, so the same bits, over one and several k
// blocks, odd K, a last panel past N, either layout of each operand, bias, activation and a
// bf16 output.
TEST_P(GemmBf16, PackingAsItGoesGivesThePrePackedBits) {
  std::mt19937 rng(23);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const Case& c : {Case{1, 97, 7}, Case{25, 200, 1030}, Case{30, 130, 2049}, Case{197, 300, 768}})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          const std::string name = name_of(c, ta, tb) + " threads " + std::to_string(threads);
          const Matrix A(ta ? c.K : c.M, ta ? c.M : c.K, 2, rng);
          const Matrix B(tb ? c.N : c.K, tb ? c.K : c.N, 1, rng);
          std::vector<float> bias(size_t(c.N));
          for (float& b : bias) b = float(rng() % 1000) / 250.0f - 2.0f;
          const GemmActivation act = tb ? GemmActivation::quick_gelu : GemmActivation::none;
          const PackedBf16B packed(tb, c.K, c.N, B.v.data(), B.ld);
          std::vector<float> going(size_t(c.M * c.N)), pre(going.size());
          std::vector<bf16> going16(going.size()), pre16(going.size());
          gemm_bf16<float>(ta, tb, c.M, c.N, c.K, A.v.data(), A.ld, B.v.data(), B.ld, bias.data(),
                           going.data(), c.N, act);
          gemm_bf16_packed<float>(ta, c.M, A.v.data(), A.ld, packed, bias.data(), pre.data(), c.N,
                                  act);
          gemm_bf16<bf16>(ta, tb, c.M, c.N, c.K, A.v.data(), A.ld, B.v.data(), B.ld, nullptr,
                          going16.data(), c.N, act);
          gemm_bf16_packed<bf16>(ta, c.M, A.v.data(), A.ld, packed, nullptr, pre16.data(), c.N, act);
          ASSERT_EQ(going, pre) << name;
          for (size_t i = 0; i < going16.size(); ++i)
            ASSERT_EQ(going16[i].bits, pre16[i].bits) << name << " bf16 out at " << i;
          if (act == GemmActivation::none) {  // and both right
            const Reference ref = reference(ta, tb, c.M, c.N, c.K, A, B, &bias);
            for (size_t i = 0; i < going.size(); ++i)
              ASSERT_NEAR(going[i], ref.value[i], f32_bound(c.K, ref.magnitude[i])) << name << " at " << i;
          }
        }
  }
  set_num_threads(0);
}

TEST_P(GemmBf16, ZeroDepthGivesTheBias) {
  const std::vector<bf16> none(1);
  const std::vector<float> bias = {1.5f, -2.0f, 0.25f};
  std::vector<float> out(6, NAN);
  gemm_bf16<float>(false, false, 2, 3, 0, none.data(), 1, none.data(), 3, bias.data(), out.data(), 3);
  EXPECT_EQ(out, (std::vector<float>{1.5f, -2.0f, 0.25f, 1.5f, -2.0f, 0.25f}));
  gemm_bf16<float>(false, false, 2, 3, 0, none.data(), 1, none.data(), 3, nullptr, out.data(), 3);
  EXPECT_EQ(out, std::vector<float>(6, 0.0f));
}

// The activation is applied to the f32 sum plus bias, before the one rounding: every
// activation against the double reference (activation slopes stay below 1.2, so the bound on
// the sum carries over with that factor), with a bias and at K == 0 (act of the bias).
TEST_P(GemmBf16, ActivationInTheStore) {
  std::mt19937 rng(5);
  const int64_t M = 37, N = 45, K = 300;
  const Matrix A(M, K, 0, rng), B(N, K, 0, rng);
  std::vector<float> bias(static_cast<size_t>(N));
  for (int64_t j = 0; j < N; ++j) bias[size_t(j)] = 0.25f * float(j % 7) - 0.75f;
  const Reference ref = reference(false, true, M, N, K, A, B, &bias);
  auto act_of = [](GemmActivation act, double v) {
    switch (act) {
      case GemmActivation::none: return v;
      case GemmActivation::relu: return v > 0 ? v : 0.0;
      case GemmActivation::gelu: return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
      case GemmActivation::gelu_tanh:
        return 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
      case GemmActivation::quick_gelu: return v / (1 + std::exp(-1.702 * v));
    }
    return v;
  };
  for (GemmActivation act : {GemmActivation::none, GemmActivation::relu, GemmActivation::gelu,
                             GemmActivation::gelu_tanh, GemmActivation::quick_gelu}) {
    SCOPED_TRACE(int(act));
    std::vector<float> out(size_t(M * N), NAN);
    gemm_bf16<float>(false, true, M, N, K, A.v.data(), K, B.v.data(), K, bias.data(), out.data(),
                     N, act);
    for (int64_t i = 0; i < M * N; ++i) {
      const double want = act_of(act, ref.value[size_t(i)]);
      const double bound = 1.2 * f32_bound(K, ref.magnitude[size_t(i)]) + 2e-6 * std::abs(want) + 1e-7;
      ASSERT_NEAR(out[size_t(i)], want, bound) << "element " << i;
    }
    std::vector<bf16> rounded(size_t(M * N));
    gemm_bf16<bf16>(false, true, M, N, K, A.v.data(), K, B.v.data(), K, bias.data(),
                    rounded.data(), N, act);
    for (int64_t i = 0; i < M * N; ++i)  // the same sums, rounded once to bf16
      ASSERT_EQ(float(rounded[size_t(i)]), float(bf16(out[size_t(i)]))) << "element " << i;
    std::vector<float> at_zero(static_cast<size_t>(2 * N), NAN);
    const std::vector<bf16> empty(1);
    gemm_bf16<float>(false, true, 2, N, 0, empty.data(), 1, empty.data(), 1, bias.data(),
                     at_zero.data(), N, act);
    for (int64_t j = 0; j < N; ++j)
      ASSERT_NEAR(at_zero[size_t(N + j)], act_of(act, bias[size_t(j)]), 1e-6) << "K = 0, column " << j;
  }
}

TEST_P(GemmBf16, SameResultOnOneThreadAndTwo) {
  std::mt19937 rng(3);
  const int64_t M = 300, N = 600, K = 100;
  const Matrix A(M, K, 0, rng), B(K, N, 0, rng);
  std::vector<float> one(size_t(M * N)), two(size_t(M * N));
  set_num_threads(1);
  gemm_bf16<float>(false, false, M, N, K, A.v.data(), K, B.v.data(), N, nullptr, one.data(), N);
  set_num_threads(2);
  gemm_bf16<float>(false, false, M, N, K, A.v.data(), K, B.v.data(), N, nullptr, two.data(), N);
  set_num_threads(0);
  EXPECT_EQ(one, two);  // each element is summed by one task in one order
}

INSTANTIATE_TEST_SUITE_P(Paths, GemmBf16,
                         ::testing::Values(GemmBf16Path::avx512_bf16, GemmBf16Path::scalar),
                         [](const auto& info) { return std::string(gemm_bf16_path_name(info.param)); });

// The two micro-kernels agree to within f32 summation order on one product.
TEST(GemmBf16Paths, AvxAndScalarAgree) {
  if (!gemm_bf16_avx512_available()) GTEST_SKIP() << "this CPU or build has no AVX512_BF16";
  std::mt19937 rng(5);
  const int64_t M = 50, N = 90, K = 333;
  const Matrix A(M, K, 0, rng), B(N, K, 0, rng);
  const Reference ref = reference(false, true, M, N, K, A, B, nullptr);
  std::vector<float> fast(size_t(M * N)), plain(size_t(M * N));
  set_gemm_bf16_path(GemmBf16Path::avx512_bf16);
  gemm_bf16<float>(false, true, M, N, K, A.v.data(), K, B.v.data(), K, nullptr, fast.data(), N);
  set_gemm_bf16_path(GemmBf16Path::scalar);
  EXPECT_EQ(gemm_bf16_path(), GemmBf16Path::scalar);
  gemm_bf16<float>(false, true, M, N, K, A.v.data(), K, B.v.data(), K, nullptr, plain.data(), N);
  set_gemm_bf16_path(GemmBf16Path::automatic);
  EXPECT_EQ(gemm_bf16_path(), GemmBf16Path::avx512_bf16);
  for (int64_t i = 0; i < M * N; ++i)
    ASSERT_NEAR(fast[size_t(i)], plain[size_t(i)], 2 * f32_bound(K, ref.magnitude[size_t(i)]));
}

// Linear layers (x W^T) with a bias and an activation, from one row to a few hundred (a ViT's
// tokens at batch 1), bf16 out: the same sums as the scalar path, to f32 summation order.
TEST(GemmBf16Paths, LinearLayersWithBiasAndActivationAgreeWithScalar) {
  if (!gemm_bf16_avx512_available()) GTEST_SKIP() << "this CPU or build has no AVX512_BF16";
  std::mt19937 rng(17);
  for (const Case& c : {Case{1, 13, 2}, Case{31, 11, 30}, Case{33, 25, 258},
                        Case{197, 40, 64}, Case{257, 37, 66}})
    for (GemmActivation act : {GemmActivation::none, GemmActivation::quick_gelu}) {
      const Matrix A(c.M, c.K, 1, rng), B(c.N, c.K, 3, rng);
      std::vector<float> bias(static_cast<size_t>(c.N));
      for (float& b : bias) b = float(rng() % 1000) / 500.0f - 1.0f;
      const Reference ref = reference(false, true, c.M, c.N, c.K, A, B, &bias);
      std::vector<float> fast(static_cast<size_t>(c.M * c.N)), plain(fast.size());
      std::vector<bf16> fast16(fast.size());
      gemm_bf16<float>(false, true, c.M, c.N, c.K, A.v.data(), A.ld, B.v.data(), B.ld,
                       bias.data(), fast.data(), c.N, act);
      gemm_bf16<bf16>(false, true, c.M, c.N, c.K, A.v.data(), A.ld, B.v.data(), B.ld,
                      bias.data(), fast16.data(), c.N, act);
      set_gemm_bf16_path(GemmBf16Path::scalar);
      gemm_bf16<float>(false, true, c.M, c.N, c.K, A.v.data(), A.ld, B.v.data(), B.ld,
                       bias.data(), plain.data(), c.N, act);
      set_gemm_bf16_path(GemmBf16Path::automatic);
      const std::string name = name_of(c, false, true) + " act " + std::to_string(int(act));
      for (int64_t i = 0; i < c.M * c.N; ++i) {
        // quick_gelu's slope is below 1.1: the sums' bound carries through it.
        ASSERT_NEAR(fast[size_t(i)], plain[size_t(i)], 2.2 * f32_bound(c.K, ref.magnitude[size_t(i)]))
            << name << " at " << i;
        ASSERT_EQ(fast16[size_t(i)].bits, bf16(fast[size_t(i)]).bits) << name << " at " << i;
      }
    }
}

}  // namespace
