// The float and double gemm against a naive product in double: every transpose combination,
// alpha/beta (beta 0 over NaN), leading dimensions wider than the matrix, sizes on either side
// of every register tile and cache block edge, batches with broadcast operands, fused
// epilogues, 1 to 3 threads, and each micro-kernel this CPU can run, forced in turn.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_config.h"
#include "kernels/cpu/parallel.h"

using namespace shallow::cpu;

namespace {

struct Case {
  bool ta = false, tb = false;
  int64_t M = 1, N = 1, K = 1;
  double alpha = 1, beta = 0;
  int64_t pad = 0;  // extra elements per row of A, B and C
  GemmActivation act = GemmActivation::none;
  int bias = 0;  // 0 none, 1 per column, 2 per row

  std::string str() const {
    return std::string(ta ? "T" : "N") + (tb ? "T" : "N") + " M=" + std::to_string(M) +
           " N=" + std::to_string(N) + " K=" + std::to_string(K) +
           " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta) +
           " pad=" + std::to_string(pad) + " act=" + std::to_string(int(act)) +
           " bias=" + std::to_string(bias);
  }
};

double activate(GemmActivation act, double x) {
  switch (act) {
    case GemmActivation::none:
      return x;
    case GemmActivation::relu:
      return x > 0 ? x : 0;
    // erfc and sigmoid(2u) == (1 + tanh u) / 2 keep the reference exact far into the negative
    // side, where 1 + erf and 1 + tanh cancel even in double.
    case GemmActivation::gelu:
      return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case GemmActivation::gelu_tanh:
      return x / (1 + std::exp(-2 * std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case GemmActivation::quick_gelu:
      return x / (1 + std::exp(-1.702 * x));
  }
  return x;
}

std::vector<double> random_values(size_t n, uint32_t seed, double scale = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-scale, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Runs one case through gemm_ex<T> and compares with the double reference. Errors are bounded
// relative to the sum of |terms| (which grows with K), plus the activation's own error.
template <class T>
void check(const Case& c, uint32_t seed = 1) {
  const int64_t rows_a = c.ta ? c.K : c.M, cols_a = c.ta ? c.M : c.K;
  const int64_t rows_b = c.tb ? c.N : c.K, cols_b = c.tb ? c.K : c.N;
  const int64_t lda = cols_a + c.pad, ldb = cols_b + c.pad, ldc = c.N + c.pad;
  const auto a = random_values(size_t(rows_a * lda), seed);
  const auto b = random_values(size_t(rows_b * ldb), seed + 1);
  const auto c0 = random_values(size_t(c.M * ldc), seed + 2);
  const auto bias = random_values(size_t(c.bias == 2 ? c.M : c.N), seed + 3);
  std::vector<T> at(a.begin(), a.end()), bt(b.begin(), b.end()), ct(c0.begin(), c0.end());
  std::vector<T> biast(bias.begin(), bias.end());
  if (c.beta == 0) std::fill(ct.begin(), ct.end(), std::numeric_limits<T>::quiet_NaN());
  GemmEpilogue<T> ep;
  ep.act = c.act;
  if (c.bias) {
    ep.bias = biast.data();
    ep.bias_per_row = c.bias == 2;
  }
  gemm_ex<T>(c.ta, c.tb, c.M, c.N, c.K, T(c.alpha), at.data(), lda, bt.data(), ldb, T(c.beta),
             ct.data(), ldc, ep);

  const double eps = std::numeric_limits<T>::epsilon();
  int64_t bad = 0;
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      double sum = 0, mag = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double x = c.ta ? a[size_t(k * lda + i)] : a[size_t(i * lda + k)];
        const double y = c.tb ? b[size_t(j * ldb + k)] : b[size_t(k * ldb + j)];
        sum += x * y;
        mag += std::abs(x * y);
      }
      double ref = c.alpha * sum, ref_mag = std::abs(c.alpha) * mag;
      if (c.beta != 0) {
        ref += c.beta * c0[size_t(i * ldc + j)];
        ref_mag += std::abs(c.beta * c0[size_t(i * ldc + j)]);
      }
      if (c.bias) {
        const double bv = bias[size_t(c.bias == 2 ? i : j)];
        ref += bv;
        ref_mag += std::abs(bv);
      }
      const double expected = activate(c.act, ref);
      const double tol = 2 * eps * double(c.K + 3) * ref_mag + 4e-7 * std::abs(expected) + 1e-30;
      const double got = double(ct[size_t(i * ldc + j)]);
      if (!(std::abs(got - expected) <= tol) && bad++ < 3)
        ADD_FAILURE() << c.str() << " at (" << i << "," << j << "): got " << got << ", expected "
                      << expected << " (tol " << tol << ")";
    }
  // Padding between rows of C is never written.
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = c.N; j < ldc; ++j) {
      const T orig = c.beta == 0 ? std::numeric_limits<T>::quiet_NaN() : T(c0[size_t(i * ldc + j)]);
      const T now = ct[size_t(i * ldc + j)];
      if (!(now == orig || (std::isnan(now) && std::isnan(orig))) && bad++ < 3)
        ADD_FAILURE() << c.str() << ": padding at (" << i << "," << j << ") was written";
    }
  EXPECT_EQ(bad, 0) << c.str();
}

std::vector<GemmIsa> runnable_isas() {
  std::vector<GemmIsa> v;
  for (GemmIsa isa : {GemmIsa::generic, GemmIsa::avx2, GemmIsa::avx512})
    if (gemm_isa_supported(isa)) v.push_back(isa);
  return v;
}

// Forces each runnable kernel in turn (and restores the automatic choice after).
template <class Fn>
void for_each_isa(Fn fn) {
  for (GemmIsa isa : runnable_isas()) {
    SCOPED_TRACE(gemm_isa_name(isa));
    set_gemm_isa_for_testing(isa);
    fn(gemm_blocking_f32(isa));
  }
  reset_gemm_isa();
}

}  // namespace

TEST(Gemm, DispatchPicksTheBestSupportedKernel) {
  reset_gemm_isa();
  EXPECT_TRUE(gemm_isa_supported(GemmIsa::generic));
  const auto isas = runnable_isas();
  EXPECT_EQ(gemm_isa(), isas.back());
  for (GemmIsa isa : {GemmIsa::avx2, GemmIsa::avx512}) {
    if (!gemm_isa_supported(isa)) {
      EXPECT_THROW(set_gemm_isa_for_testing(isa), std::invalid_argument);
    }
  }
  for (GemmIsa isa : isas) {
    const GemmBlocking bl = gemm_blocking_f32(isa);
    EXPECT_EQ(bl.mc % bl.mr, 0) << gemm_isa_name(isa);
    EXPECT_LE(bl.mr * bl.nr, 1024) << gemm_isa_name(isa);  // the driver's edge-tile buffer
  }
}

TEST(Gemm, TransposesAlphaBetaAndLeadingDimensions) {
  for_each_isa([](const GemmBlocking& bl) {
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (double alpha : {1.0, -0.5})
          for (double beta : {0.0, 1.0, 0.75})
            for (int64_t pad : {0, 3}) {
              Case c{ta, tb, bl.mr + 1, bl.nr + 3, 37, alpha, beta, pad};
              check<float>(c);
              check<double>(c);
            }
  });
}

TEST(Gemm, SizesAroundEveryBlockEdge) {
  for_each_isa([](const GemmBlocking& bl) {
    auto around = [](int64_t n) { return std::vector<int64_t>{n - 1, n, n + 1}; };
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check<float>({ta, tb, 1, 1, 1, 1, 0});
        // One dimension at a time crosses its edges; the others stay small but cross their
        // register tile, and K crosses a k block so that partial sums are accumulated.
        for (int64_t m : around(bl.mr)) check<float>({ta, tb, m, bl.nr + 1, 5, 1, 0.5, 2});
        for (int64_t n : around(bl.nr)) check<float>({ta, tb, bl.mr + 1, n, 5, 1, 0.5, 2});
        for (int64_t k : around(bl.kc)) check<float>({ta, tb, bl.mr - 1, bl.nr + 1, k, 1, 0.5, 1});
      }
    for (int64_t m : around(bl.mc)) check<float>({false, true, m, bl.nr - 1, bl.kc + 1, 1, 0, 1});
    // With K at most half of kc the driver takes blocks of 2 mc rows.
    for (int64_t m : around(2 * bl.mc)) check<float>({true, false, m, bl.nr + 1, 9, 1, 0.5, 1});
    for (int64_t n : around(bl.nc)) check<float>({true, false, bl.mr + 1, n, 3, 1, 0.5, 1});
    check<float>({false, false, bl.mc + 1, bl.nc + 1, 2, 1, 0, 0});
    check<float>({true, true, bl.mc - 1, bl.nr * 3 + 1, bl.kc * 2 + 1, -1, 1, 0});
  });
  const GemmBlocking bl = gemm_blocking_f64();
  for (int64_t m : {bl.mr - 1, bl.mr + 1, bl.mc + 1})
    for (int64_t k : {bl.kc - 1, bl.kc + 1})
      check<double>({false, true, m, bl.nr + 1, k, 1, 0.5, 1});
  check<double>({true, false, 3, bl.nc + 1, 2, 1, 0, 0});
}

// C's last rows, fewer than a tile, run on a shorter tile where the kernel has one (AVX-512:
// 8 of 12 rows): every remainder, both layouts of A, with and without beta, a per-row bias
// (which must meet the right rows), on one thread and on two splitting the rows.
TEST(Gemm, EveryRemainderOfTheLastRowTile) {
  for (int threads : {1, 2}) {
    SCOPED_TRACE(threads);
    set_num_threads(threads);
    for_each_isa([](const GemmBlocking& bl) {
      for (int64_t rest = 1; rest < bl.mr; ++rest) {
        const bool odd = rest % 2;
        check<float>({odd, !odd, 2 * bl.mr + rest, bl.nr + 5, 40, 1, odd ? 0.0 : 0.5, odd ? 0 : 2,
                      GemmActivation::relu, 2});
        check<float>({!odd, true, bl.mc + rest, 2 * bl.nr, 3, -1, 0, 0});  // in a second block
      }
    });
  }
  set_num_threads(0);
}

// A thread that packs its own panels of B (one thread, or threads splitting the columns) takes
// all its rows in one block where they fit, packing each panel for a single use while the next
// one's source is prefetched, and otherwise keeps a column block's panels for its next row
// blocks: both, over several k blocks, with B stored either way.
TEST(Gemm, OwnPanelsOverOneOrSeveralRowBlocks) {
  const GemmBlocking bl = gemm_blocking_f32(gemm_isa());
  for (bool tb : {false, true}) {
    set_num_threads(1);
    check<float>({false, tb, 2 * bl.mc + 5, 3 * bl.nr + 1, bl.kc + 7, 1, 0.5, 1});  // several
    check<float>({true, tb, bl.mc + 5, 3 * bl.nr + 1, bl.kc + 7, 1, 0, 0});         // one
    set_num_threads(2);
    check<float>({false, tb, 3 * bl.mr + 1, 12 * bl.nr + 5, 2 * bl.kc + 3, 1, 0.5, 2,
                  GemmActivation::gelu, 1});
  }
  set_num_threads(0);
}

// Few rows times a transposed B (x W^T at batch 1) runs unpacked where the kernel can: rows
// around its 32-row panels and the limit, columns around its 12-column tiles and the threads'
// 48-column pieces, K across its 768-deep blocks (each after the first adds onto C).
TEST(Gemm, FewRowsTimesTransposedBAroundItsTiles) {
  const int64_t limit = gemm_unpacked_max_rows();
  for_each_isa([&](const GemmBlocking&) {
    int variant = 0;
    for (int64_t m : {int64_t(1), int64_t(31), int64_t(33), limit, limit + 1})
      for (int64_t n : {1, 11, 13, 49})
        for (int64_t k : {1, 17, 769, 1600}) {
          const bool odd = ++variant % 2;
          check<float>({false, true, m, n, k, odd ? 1.0 : 0.5, odd ? 0.0 : 0.5, odd ? 0 : 3});
        }
    check<float>({false, true, 40, 96, 800, 1, 0.5, 1, GemmActivation::gelu, 1});
    check<float>({false, true, 40, 30, 20, 1, 0, 0, GemmActivation::relu, 2});
  });
}

TEST(Gemm, AnyThreadCountAndNestedCalls) {
  const GemmBlocking bl = gemm_blocking_f32(gemm_isa());
  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE(threads);
    set_num_threads(threads);
    check<float>({false, false, 3 * bl.mr + 5, 2 * bl.nr + 7, 300, 1, 0.5, 1});  // rows split
    check<float>({false, true, 2, 5 * bl.nr + 3, 300, 1, 0, 0});                 // columns split
    // Columns split, each thread packing its own panels as it goes, over several k blocks.
    check<float>({false, false, 2, 5 * bl.nr + 3, 2 * bl.kc + 5, 1, 0.5, 1});
    check<float>({true, false, bl.mc + 7, bl.nr + 1, bl.kc + 9, 1, 0, 0, GemmActivation::relu, 1});
  }
  set_num_threads(2);
  // A gemm called from inside a parallel region runs on its own thread.
  std::vector<int> failures(4, 0);
  parallel_for(0, 4, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t M = 40 + i, N = 50, K = 300;
      std::vector<float> a(size_t(M * K), 0.5f), bm(size_t(K * N), 0.25f), c(size_t(M * N), 1.0f);
      gemm<float>(false, false, M, N, K, 1.0f, a.data(), K, bm.data(), N, 1.0f, c.data(), N);
      for (float v : c) failures[size_t(i)] += v != 1.0f + 0.125f * K;
    }
  });
  for (int f : failures) EXPECT_EQ(f, 0);
  set_num_threads(0);
}

TEST(Gemm, EpilogueBiasAndActivations) {
  for_each_isa([](const GemmBlocking& bl) {
    for (GemmActivation act : {GemmActivation::none, GemmActivation::relu, GemmActivation::gelu,
                               GemmActivation::gelu_tanh, GemmActivation::quick_gelu})
      for (int bias : {0, 1, 2}) {
        // A tile edge in both dims, two k blocks (the epilogue runs on the last one only).
        check<float>({false, true, bl.mr + 2, bl.nr + 5, bl.kc + 3, 1, 0, 1, act, bias});
        check<float>({true, false, 5, 7, 9, 0.5, 0.5, 0, act, bias});
        check<double>({false, false, 6, 9, 11, 1, 1, 0, act, bias});
        // K == 0 and alpha == 0: C = act(beta C + bias), A and B unread.
        check<float>({false, false, 5, 7, 0, 1, 0.5, 1, act, bias});
        check<float>({false, false, 5, 7, 4, 0, 1, 0, act, bias});
      }
  });
}

TEST(Gemm, ActivationsAreAccurateOverTheirWholeRange) {
  // C = x through a 1 x K = 1 product, x from -12 to 12, compared with the double formulas.
  // The float argument of exp (about x^2 / 2 for gelu) carries a rounding error that grows with
  // |x|, hence the tolerance's x^2 term.
  const int64_t n = 4801;
  std::vector<float> x(static_cast<size_t>(n)), one(1, 1.0f), y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = -12.0f + 0.005f * float(i);
  for_each_isa([&](const GemmBlocking&) {
    for (GemmActivation act : {GemmActivation::relu, GemmActivation::gelu,
                               GemmActivation::gelu_tanh, GemmActivation::quick_gelu}) {
      GemmEpilogue<float> ep;
      ep.act = act;
      gemm_ex<float>(false, false, n, 1, 1, 1.0f, x.data(), 1, one.data(), 1, 0.0f, y.data(), 1,
                     ep);
      for (int64_t i = 0; i < n; ++i) {
        const double expected = activate(act, double(x[size_t(i)]));
        const double err = std::abs(double(y[size_t(i)]) - expected);
        const double xv = x[size_t(i)];
        if (err > 2e-7 * (2 + xv * xv) * std::abs(expected) + 1e-37) {
          ADD_FAILURE() << "act " << int(act) << " at x=" << x[size_t(i)] << ": " << y[size_t(i)]
                        << " vs " << expected;
          break;
        }
      }
    }
  });
}

TEST(Gemm, BatchedWithBroadcastOperands) {
  for_each_isa([](const GemmBlocking& bl) {
    const int64_t M = bl.mr + 1, N = bl.nr + 2, K = 19;
    for (int64_t batch : {1, 3, 8})
      for (int broadcast : {0, 1, 2}) {  // 1: one A for every batch, 2: one B
        const int64_t sa = broadcast == 1 ? 0 : M * K, sb = broadcast == 2 ? 0 : K * N;
        const auto a = random_values(size_t(batch * M * K), 7),
                   b = random_values(size_t(batch * K * N), 8);
        std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
        std::vector<float> c(size_t(batch * M * N), std::numeric_limits<float>::quiet_NaN());
        gemm_batched<float>(batch, false, true, M, N, K, 1.0f, af.data(), K, sa, bf.data(), K, sb,
                            0.0f, c.data(), N, M * N);
        for (int64_t p = 0; p < batch; ++p) {
          std::vector<float> one(size_t(M * N));
          gemm<float>(false, true, M, N, K, 1.0f, af.data() + p * sa, K, bf.data() + p * sb, K,
                      0.0f, one.data(), N);
          for (int64_t i = 0; i < M * N; ++i)
            ASSERT_EQ(c[size_t(p * M * N + i)], one[size_t(i)]) << "batch " << p << " of " << batch;
        }
      }
  });
  check<float>({false, true, 7, 9, 19, 1, 0, 0});
}

TEST(Gemm, EmptySizesTouchNothing) {
  std::vector<float> c(4, 7.0f);
  gemm<float>(false, false, 0, 2, 3, 1.0f, nullptr, 3, nullptr, 2, 0.0f, c.data(), 2);
  gemm<float>(false, false, 2, 0, 3, 1.0f, nullptr, 3, nullptr, 2, 0.0f, c.data(), 2);
  for (float v : c) EXPECT_EQ(v, 7.0f);
}
