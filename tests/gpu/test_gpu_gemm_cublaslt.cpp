// CudaGemm::cublas with an epilogue, where cuBLASLt folds the bias (and gelu_tanh) into the
// product (kernels/cuda/gemm_cublaslt.h): every activation x no bias / per-column / per-row
// bias x f32 and bf16 x every transpose x batches of 1 and 3 (separate or shared operands), at
// odd and ViT-like sizes, beta != 0 with a bias, NaN through relu; each element of C against
// the double product of the same inputs (gemm_reference.h). Also: which cases take the
// cuBLASLt path and which decline, and that switching it off gives the same results.
#include <cmath>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "engine/cuda/gemm_cublaslt_ops.h"
#include "engine/cuda/gemm_ops.h"
#include "tests/gpu/gemm_reference.h"
#include "tests/gpu/gpu_test.h"

namespace shallow::testing {
namespace {

using cpu::GemmActivation;

class UseCublas {
 public:
  UseCublas() : previous_(cuda_gemm()) { set_cuda_gemm(CudaGemm::cublas); }
  ~UseCublas() { set_cuda_gemm(previous_); }

 private:
  CudaGemm previous_;
};

class LtAllowed {
 public:
  explicit LtAllowed(bool on) : previous_(gpu::cublaslt_allowed()) { gpu::set_cublaslt_allowed(on); }
  ~LtAllowed() { gpu::set_cublaslt_allowed(previous_); }

 private:
  bool previous_;
};

class LtReluEpilogue {
 public:
  explicit LtReluEpilogue(bool on) : previous_(gpu::cublaslt_relu_epilogue()) {
    gpu::set_cublaslt_relu_epilogue(on);
  }
  ~LtReluEpilogue() { gpu::set_cublaslt_relu_epilogue(previous_); }

 private:
  bool previous_;
};

const GemmActivation kActs[] = {GemmActivation::none, GemmActivation::relu, GemmActivation::gelu,
                                GemmActivation::gelu_tanh, GemmActivation::quick_gelu};

enum class Bias { none, per_column, per_row };

struct LtCase {
  int64_t M, N, K;
  bool trans_a = false, trans_b = false;
  int64_t batch = 1;
  bool share_a = false, share_b = false;  // batch stride 0: one matrix for every batch
  double alpha = 1, beta = 0;
  Bias bias = Bias::none;
  GemmActivation act = GemmActivation::none;
  int64_t pad_c = 0;  // extra elements per row of C (left NaN, must stay so)
};

std::string describe(const LtCase& c, DType dt) {
  const char* bias = c.bias == Bias::none ? "" : c.bias == Bias::per_row ? " bias/row" : " bias/col";
  return str_cat(dtype_name(dt), " M ", c.M, " N ", c.N, " K ", c.K, " ta ", c.trans_a, " tb ",
                 c.trans_b, " batch ", c.batch, c.share_a ? " (A shared)" : "",
                 c.share_b ? " (B shared)" : "", " alpha ", c.alpha, " beta ", c.beta, bias,
                 " act ", act_name(c.act), " pad_c ", c.pad_c);
}

// Whether the cuBLASLt path may take the case (gemm_cublaslt.h): f32 or bf16 with a bias per
// column, or gelu_tanh in bf16 (cuBLASLt's GELU). It may still decline what cuBLASLt refuses.
bool lt_may_take(const LtCase& c, DType dt) {
  if (dt != DType::f32 && dt != DType::bf16) return false;
  if (c.bias == Bias::per_row) return false;
  return c.bias == Bias::per_column || (c.act == GemmActivation::gelu_tanh && dt == DType::bf16) ||
         (c.act == GemmActivation::relu && gpu::cublaslt_relu_epilogue());
}

struct LtRun {
  std::vector<double> c;  // C after the call, [batch, M, N + pad_c]
  bool through_lt = false;
};

// Runs the case through gpu::gemm_ex (CudaGemm::cublas) and checks every element of C against
// the double product of the same (dtype-rounded) inputs; C's padding must stay NaN, and with
// beta == 0 C starts as NaN (read, it would show).
LtRun run_and_check(const LtCase& c, DType dt, uint64_t seed) {
  SCOPED_TRACE(describe(c, dt));
  const int64_t M = c.M, N = c.N, K = c.K;
  // op(A) is M x K: stored [M, K], or [K, M] when transposed; op(B) K x N likewise.
  const int64_t a_rows = c.trans_a ? K : M, lda = c.trans_a ? M : K;
  const int64_t b_rows = c.trans_b ? N : K, ldb = c.trans_b ? K : N;
  const int64_t ldc = N + c.pad_c;
  const Tensor a_host = cpu_rand({c.share_a ? 1 : c.batch, a_rows, lda}, dt, seed, -1.0, 1.0);
  const Tensor b_host = cpu_rand({c.share_b ? 1 : c.batch, b_rows, ldb}, dt, seed + 1, -1.0, 1.0);
  const std::vector<double> av = a_host.to_vector<double>(), bv = b_host.to_vector<double>();
  const int64_t stride_a = c.share_a ? 0 : a_rows * lda, stride_b = c.share_b ? 0 : b_rows * ldb;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor c0 = c.beta != 0 ? cpu_rand({c.batch, M, ldc}, dt, seed + 2, -1.0, 1.0)
                          : Tensor::full({c.batch, M, ldc}, nan, dt);
  if (c.beta != 0 && c.pad_c > 0) c0.slice(2, N, ldc).fill_(nan);
  const std::vector<double> c0v = c0.to_vector<double>();
  Tensor bias_host;
  std::vector<double> bias_v;
  if (c.bias != Bias::none) {
    bias_host = cpu_rand({c.bias == Bias::per_row ? M : N}, dt, seed + 3, -1.0, 1.0);
    bias_v = bias_host.to_vector<double>();
  }

  const Tensor a_dev = a_host.to(gpu()), b_dev = b_host.to(gpu());
  Tensor c_dev = c0.to(gpu());
  gpu::GemmEpilogueArgs ep;
  if (c.bias != Bias::none) ep.bias = bias_host.to(gpu());
  ep.bias_per_row = c.bias == Bias::per_row;
  ep.act = c.act;
  const uint64_t before = gpu::cublaslt_gemm_count();
  gpu::gemm_ex(c.batch, c.trans_a, c.trans_b, M, N, K, c.alpha, a_dev, lda, stride_a, b_dev, ldb,
               stride_b, c.beta, c_dev, ldc, M * ldc, ep, "test_gemm_cublaslt");
  LtRun run;
  run.through_lt = gpu::cublaslt_gemm_count() > before;
  run.c = c_dev.to(Device::cpu()).to_vector<double>();

  GemmShape shape{dt, c.batch, M, N, K, ldc, c.alpha, c.beta, c.bias == Bias::per_row, c.act};
  // Stored, then finished by the separate pass: where cuBLASLt did not run, or left the
  // activation to the pass (gelu, quick_gelu, relu without its epilogue, gelu_tanh in f32).
  const bool act_in_pass = c.act == GemmActivation::gelu || c.act == GemmActivation::quick_gelu ||
                           (c.act == GemmActivation::relu && !gpu::cublaslt_relu_epilogue()) ||
                           (c.act == GemmActivation::gelu_tanh && dt != DType::bf16);
  const bool epilogue = c.bias != Bias::none || c.act != GemmActivation::none;
  if (epilogue && (!run.through_lt || act_in_pass)) shape.roundings = 2;
  expect_gemm_result(
      shape,
      [&](int64_t b, int64_t i, int64_t k) {
        const int64_t m = c.share_a ? 0 : b;
        return c.trans_a ? av[size_t((m * a_rows + k) * lda + i)]
                         : av[size_t((m * a_rows + i) * lda + k)];
      },
      [&](int64_t b, int64_t k, int64_t j) {
        const int64_t m = c.share_b ? 0 : b;
        return c.trans_b ? bv[size_t((m * b_rows + j) * ldb + k)]
                         : bv[size_t((m * b_rows + k) * ldb + j)];
      },
      c0v, bias_v, run.c);
  // What must never take the path: f64, a per-row bias, an activation with no cuBLASLt form and
  // no bias, no epilogue at all.
  if (!lt_may_take(c, dt)) {
    EXPECT_FALSE(run.through_lt) << "ran through cuBLASLt";
  }
  return run;
}

// Every batch layout: one matrix; three; three with A shared; three with B shared.
LtCase with_batch_mode(LtCase c, int mode) {
  c.batch = mode == 0 ? 1 : 3;
  c.share_a = mode == 2;
  c.share_b = mode == 3;
  return c;
}

void report(const char* test, int through_lt, int total) {
  std::cout << "[ cuBLASLt ] " << test << ": " << through_lt << " of " << total
            << " cases ran through cublasLtMatmul\n";
}

TEST(GpuGemmCublasLt, EveryEpilogueAtOddSizes) {
  SKIP_WITHOUT_CUDA();
  UseCublas cublas;
  LtAllowed lt(true);
  uint64_t seed = 9000;
  int through_lt = 0, total = 0;
  for (DType dt : {DType::f32, DType::bf16}) {
    for (GemmActivation act : kActs) {
      for (Bias bias : {Bias::none, Bias::per_column, Bias::per_row}) {
        for (int t = 0; t < 4; ++t) {
          for (int mode = 0; mode < 4; ++mode) {
            LtCase c{37, 45, 19};
            c.trans_a = (t & 1) != 0;
            c.trans_b = (t & 2) != 0;
            c = with_batch_mode(c, mode);
            c.bias = bias;
            c.act = act;
            c.pad_c = mode == 1 ? 3 : 0;  // C's rows longer than N: the padding stays NaN
            const LtRun run = run_and_check(c, dt, seed++);
            through_lt += run.through_lt;
            ++total;
          }
        }
      }
    }
  }
  report("odd sizes", through_lt, total);
}

TEST(GpuGemmCublasLt, F64AndPlainProductsStayOnCublas) {
  SKIP_WITHOUT_CUDA();
  UseCublas cublas;
  LtAllowed lt(true);
  uint64_t seed = 9500;
  // run_and_check fails any of these that runs through cuBLASLt.
  for (GemmActivation act : kActs) {
    LtCase c{33, 40, 24};
    c.trans_b = true;
    c.bias = Bias::per_column;
    c.act = act;
    run_and_check(c, DType::f64, seed++);  // f64: never
  }
  LtCase plain{64, 64, 64};
  run_and_check(plain, DType::bf16, seed++);  // no epilogue: cublasGemmStridedBatchedEx
  run_and_check(plain, DType::f32, seed++);
  LtCase gelu{64, 64, 64};
  gelu.act = GemmActivation::gelu;  // erf gelu without bias: nothing to fold
  run_and_check(gelu, DType::bf16, seed++);
}

// The shapes of a ViT-B/16 MLP (x [197, 768] times a weight stored [3072, 768]): the case the
// path is for, which cuBLASLt must take with a per-column bias.
TEST(GpuGemmCublasLt, VitSizedLinearRunsThroughCublasLt) {
  SKIP_WITHOUT_CUDA();
  UseCublas cublas;
  LtAllowed lt(true);
  uint64_t seed = 9600;
  struct Variant {
    DType dt;
    Bias bias;
    GemmActivation act;
  };
  const Variant variants[] = {
      {DType::bf16, Bias::per_column, GemmActivation::gelu_tanh},
      {DType::bf16, Bias::per_column, GemmActivation::gelu},
      {DType::f32, Bias::per_column, GemmActivation::gelu_tanh},
  };  // three: the double reference of each takes seconds
  for (const Variant& v : variants) {
    LtCase c{197, 3072, 768};
    c.trans_b = true;
    c.bias = v.bias;
    c.act = v.act;
    const LtRun run = run_and_check(c, v.dt, seed++);
    EXPECT_TRUE(run.through_lt) << describe(c, v.dt) << ": did not run through cuBLASLt";
  }
}

TEST(GpuGemmCublasLt, BetaAndAlphaWithBias) {
  SKIP_WITHOUT_CUDA();
  UseCublas cublas;
  LtAllowed lt(true);
  uint64_t seed = 9700;
  int through_lt = 0, total = 0;
  for (DType dt : {DType::f32, DType::bf16}) {
    for (GemmActivation act : kActs) {
      for (int mode : {0, 3}) {
        LtCase c{37, 45, 19};
        c.trans_b = true;
        c = with_batch_mode(c, mode);
        c.alpha = mode == 0 ? -0.5 : 1.25;
        c.beta = mode == 0 ? 0.75 : -1;
        c.bias = Bias::per_column;
        c.act = act;
        through_lt += run_and_check(c, dt, seed++).through_lt;
        ++total;
        LtCase d{64, 96, 72};  // rows 16-byte aligned
        d = with_batch_mode(d, mode);
        d.alpha = 0.5;
        d.beta = 1;
        d.bias = Bias::per_column;
        d.act = act;
        through_lt += run_and_check(d, dt, seed++).through_lt;
        ++total;
      }
    }
  }
  report("beta with bias", through_lt, total);
}

// SHALLOW_CUDA_CUBLASLT=0 (set_cublaslt_allowed(false)): nothing runs through cuBLASLt, and
// the results agree with the cuBLASLt ones within the dtype's tolerance (both are checked
// against the reference as well).
TEST(GpuGemmCublasLt, SwitchedOffGivesTheSameResults) {
  SKIP_WITHOUT_CUDA();
  UseCublas cublas;
  uint64_t seed = 9800;
  for (DType dt : {DType::f32, DType::bf16}) {
    for (GemmActivation act : kActs) {
      for (int mode = 0; mode < 4; ++mode) {
        LtCase c{mode % 2 == 0 ? int64_t(37) : int64_t(64), 45, mode % 2 == 0 ? int64_t(19) : int64_t(72)};
        c.trans_a = mode == 1;
        c.trans_b = mode != 1;
        c = with_batch_mode(c, mode);
        c.bias = Bias::per_column;
        c.act = act;
        c.beta = mode == 3 ? 0.5 : 0;
        SCOPED_TRACE(describe(c, dt));
        LtRun on, off;
        {
          LtAllowed lt(true);
          on = run_and_check(c, dt, seed);
        }
        {
          LtAllowed lt(false);
          off = run_and_check(c, dt, seed);
          EXPECT_FALSE(off.through_lt) << "switched off, still ran through cuBLASLt";
        }
        ++seed;
        ASSERT_EQ(on.c.size(), off.c.size());
        const Tol tol = tol_for(dt);
        int bad = 0;
        for (size_t i = 0; i < on.c.size() && bad < 5; ++i) {
          const bool both_nan = std::isnan(on.c[i]) && std::isnan(off.c[i]);  // C's padding
          if (!both_nan && !(std::fabs(on.c[i] - off.c[i]) <= tol.atol + tol.rtol * std::fabs(off.c[i]))) {
            ++bad;
            ADD_FAILURE() << "element " << i << ": " << on.c[i] << " with cuBLASLt, " << off.c[i]
                          << " without";
          }
        }
      }
    }
  }
}

// A NaN in A makes its row of C NaN before the activation; the engine's relu keeps NaN, so it
// must come out NaN whatever path runs (by default relu is the separate pass after cuBLASLt's
// bias). Rows without NaN are checked for relu's values.
std::vector<double> relu_over_nan_row(DType dt, int64_t M, int64_t N, int64_t K, uint64_t seed) {
  Tensor a = cpu_rand({M, K}, dt, seed, -1.0, 1.0);
  a.slice(0, 0, 1).slice(1, 0, 1).fill_(std::numeric_limits<double>::quiet_NaN());
  const Tensor b = cpu_rand({N, K}, dt, seed + 1, -1.0, 1.0);  // stored [N, K]: trans_b
  const Tensor bias = cpu_rand({N}, dt, seed + 2, -1.0, 1.0);
  Tensor c = Tensor::full({M, N}, 0.0, dt).to(gpu());
  gpu::GemmEpilogueArgs ep;
  ep.bias = bias.to(gpu());
  ep.act = GemmActivation::relu;
  gpu::gemm_ex(1, false, true, M, N, K, 1.0, a.to(gpu()), K, 0, b.to(gpu()), K, 0, 0.0, c, N,
               M * N, ep, "test_gemm_cublaslt");
  return c.to(Device::cpu()).to_vector<double>();
}

TEST(GpuGemmCublasLt, ReluKeepsNan) {
  SKIP_WITHOUT_CUDA();
  UseCublas cublas;
  LtAllowed lt(true);
  for (DType dt : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dt));
    const int64_t M = 8, N = 64, K = 32;
    const std::vector<double> c = relu_over_nan_row(dt, M, N, K, 9900);
    for (int64_t j = 0; j < N; ++j) EXPECT_TRUE(std::isnan(c[size_t(j)])) << "C[0][" << j << "]";
    for (int64_t i = 1; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) EXPECT_GE(c[size_t(i * N + j)], 0.0) << "C[" << i << "][" << j << "]";
  }
}

// cuBLASLt's own RELU epilogue, allowed: its values must be relu's; whether it keeps NaN is
// reported (the reason it is off by default: if it maps NaN to 0 it must stay off).
TEST(GpuGemmCublasLt, ReluEpilogueValuesAndItsNanRule) {
  SKIP_WITHOUT_CUDA();
  UseCublas cublas;
  LtAllowed lt(true);
  LtReluEpilogue relu_epilogue(true);
  uint64_t seed = 9950;
  for (DType dt : {DType::f32, DType::bf16}) {
    for (Bias bias : {Bias::none, Bias::per_column}) {
      LtCase c{64, 96, 72};
      c.trans_b = true;
      c.bias = bias;
      c.act = GemmActivation::relu;
      run_and_check(c, dt, seed++);
      c.batch = 3;
      c.share_b = true;
      c.beta = 0.5;
      run_and_check(c, dt, seed++);
    }
    const std::vector<double> nan_row = relu_over_nan_row(dt, 8, 64, 32, seed++);
    int kept = 0;
    for (int64_t j = 0; j < 64; ++j) kept += std::isnan(nan_row[size_t(j)]);
    std::cout << "[ cuBLASLt ] RELU_BIAS epilogue, " << dtype_name(dt) << ": " << kept
              << " of 64 NaN sums came out NaN ("
              << (kept == 64 ? "keeps NaN like the engine's relu: it could be enabled"
                             : "does not keep NaN: keep set_cublaslt_relu_epilogue off")
              << ")\n";
  }
}

}  // namespace
}  // namespace shallow::testing
