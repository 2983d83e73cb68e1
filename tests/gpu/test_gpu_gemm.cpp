// The engine's own CUDA GEMM kernels (CudaGemm::tiled): the bf16 tensor-core kernel and the f32
// 128 x 128 kernel at tile edges, every transpose, batch strides 0 and not, alpha/beta (beta 0
// over a C full of NaN), and the fused epilogue (bias, activations), against a double product
// of the same input values computed here; then linear/linear_act on CUDA (both backends)
// against the CPU ops, forward and backward.
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "engine/cuda/gemm_ops.h"
#include "engine/cuda/gemm_wgmma_ops.h"
#include "tests/gpu/gemm_reference.h"
#include "tests/gpu/gpu_test.h"

namespace shallow::testing {
namespace {

using cpu::GemmActivation;

class UseGemm {
 public:
  explicit UseGemm(CudaGemm g) : previous_(cuda_gemm()) { set_cuda_gemm(g); }
  ~UseGemm() { set_cuda_gemm(previous_); }

 private:
  CudaGemm previous_;
};

// Keeps bf16 on the mma.sync kernel (not the Hopper one, tested in test_gpu_gemm_wgmma.cpp).
class WithoutWgmma {
 public:
  WithoutWgmma() : previous_(gpu::bf16_wgmma_allowed()) { gpu::set_bf16_wgmma_allowed(false); }
  ~WithoutWgmma() { gpu::set_bf16_wgmma_allowed(previous_); }

 private:
  bool previous_;
};

struct GemmCase {
  int64_t M, N, K;
  bool trans_a = false, trans_b = false;
  int64_t batch = 1;
  bool share_a = false, share_b = false;  // batch stride 0: one matrix for every batch
  double alpha = 1, beta = 0;
  bool bias = false, bias_per_row = false;
  GemmActivation act = GemmActivation::none;
  int64_t pad_a = 0, pad_b = 0, pad_c = 0;  // extra elements per stored row of A, B, C
};

// The columns op(A) and op(B) are stored with (their row lengths).
int64_t a_cols(const GemmCase& c) { return c.trans_a ? c.M : c.K; }
int64_t b_cols(const GemmCase& c) { return c.trans_b ? c.K : c.N; }
// Extra elements that make a row of `cols` a multiple of 8 (16 bytes of bf16).
int64_t pad_to_8(int64_t cols) { return (8 - cols % 8) % 8; }
// The row padding with which the tensor-core kernel can read the operands.
GemmCase aligned(GemmCase c) {
  c.pad_a = pad_to_8(a_cols(c));
  c.pad_b = pad_to_8(b_cols(c));
  return c;
}

std::string describe(const GemmCase& c, DType dt) {
  return str_cat(dtype_name(dt), " M ", c.M, " N ", c.N, " K ", c.K, " ta ", c.trans_a, " tb ",
                 c.trans_b, " batch ", c.batch, c.share_a ? " (A shared)" : "",
                 c.share_b ? " (B shared)" : "", " alpha ", c.alpha, " beta ", c.beta,
                 c.bias ? (c.bias_per_row ? " bias/row" : " bias/col") : "", " act ",
                 act_name(c.act), " pads ", c.pad_a, "/", c.pad_b, "/", c.pad_c);
}

// A stored operand: `count` matrices of rows x ld (the first `cols` of each row in use).
struct Stored {
  int64_t count, rows, cols, ld;
  Tensor host;  // [count, rows, ld] in the test dtype, on the CPU
  std::vector<double> v;
  double at(int64_t m, int64_t r, int64_t c) const { return v[size_t((m * rows + r) * ld + c)]; }
};

Stored make_stored(int64_t count, int64_t rows, int64_t cols, int64_t ld, DType dt, uint64_t seed) {
  Stored s{count, rows, cols, ld, cpu_rand({count, rows, ld}, dt, seed, -1.0, 1.0), {}};
  s.v = s.host.to_vector<double>();
  return s;
}

// Runs the case with gpu::gemm_ex and checks every element of C against the double product of
// the same (dtype-rounded) inputs (gemm_reference.h); checks that the padding of C's rows is
// left alone.
// Returns the kernel CudaGemm::tiled picked for these operands.
std::string check_gemm(const GemmCase& c, DType dt, uint64_t seed) {
  const std::string what = describe(c, dt);
  SCOPED_TRACE(what);
  const int64_t M = c.M, N = c.N, K = c.K;
  // op(A) is M x K: stored [M, K], or [K, M] when transposed; op(B) K x N likewise.
  const int64_t a_rows = c.trans_a ? K : M, b_rows = c.trans_b ? N : K;
  const int64_t lda = a_cols(c) + c.pad_a, ldb = b_cols(c) + c.pad_b, ldc = N + c.pad_c;
  const Stored A = make_stored(c.share_a ? 1 : c.batch, a_rows, a_cols(c), lda, dt, seed);
  const Stored B = make_stored(c.share_b ? 1 : c.batch, b_rows, b_cols(c), ldb, dt, seed + 1);
  const int64_t stride_a = c.share_a ? 0 : a_rows * lda, stride_b = c.share_b ? 0 : b_rows * ldb;
  // C starts random where beta reads it; NaN everywhere else (the padding included), so
  // reading C with beta == 0 or writing outside the matrix shows.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor c0 = c.beta != 0 ? cpu_rand({c.batch, M, ldc}, dt, seed + 2, -1.0, 1.0)
                          : Tensor::full({c.batch, M, ldc}, nan, dt);
  if (c.beta != 0 && c.pad_c > 0) c0.slice(2, N, ldc).fill_(nan);
  const std::vector<double> c0v = c0.to_vector<double>();
  Tensor bias_host;
  std::vector<double> bias_v;
  if (c.bias) {
    bias_host = cpu_rand({c.bias_per_row ? M : N}, dt, seed + 3, -1.0, 1.0);
    bias_v = bias_host.to_vector<double>();
  }

  const Tensor a_dev = A.host.to(gpu()), b_dev = B.host.to(gpu());
  Tensor c_dev = c0.to(gpu());
  gpu::GemmEpilogueArgs ep;
  if (c.bias) ep.bias = bias_host.to(gpu());
  ep.bias_per_row = c.bias_per_row;
  ep.act = c.act;
  const std::string kernel =
      gpu::tiled_gemm_kernel(c.batch, a_dev, lda, stride_a, b_dev, ldb, stride_b);
  gpu::gemm_ex(c.batch, c.trans_a, c.trans_b, M, N, K, c.alpha, a_dev, lda, stride_a, b_dev, ldb,
               stride_b, c.beta, c_dev, ldc, M * ldc, ep, "test_gemm");
  const std::vector<double> got = c_dev.to(Device::cpu()).to_vector<double>();

  GemmShape shape{dt, c.batch, M, N, K, ldc, c.alpha, c.beta, c.bias_per_row, c.act};
  // On cuBLAS the product may be stored before a separate pass finishes it: two roundings.
  if (cuda_gemm() == CudaGemm::cublas && (c.bias || c.act != GemmActivation::none))
    shape.roundings = 2;
  expect_gemm_result(
      shape,
      [&](int64_t b, int64_t i, int64_t k) {
        const int64_t m = c.share_a ? 0 : b;
        return c.trans_a ? A.at(m, k, i) : A.at(m, i, k);
      },
      [&](int64_t b, int64_t k, int64_t j) {
        const int64_t m = c.share_b ? 0 : b;
        return c.trans_b ? B.at(m, j, k) : B.at(m, k, j);
      },
      c0v, bias_v, got);
  return kernel;
}

// ---- the bf16 tensor-core kernel

struct Size3 {
  int64_t M, N, K;
};

TEST(GpuGemmTiled, Bf16TensorCoreAtTileEdgesEveryTranspose) {
  SKIP_WITHOUT_CUDA();
  UseGemm tiled(CudaGemm::tiled);
  WithoutWgmma mma_sync;
  // Sizes around the mma tile (16 x 8 x 16), the K slice (32) and the block tile (128 x 256).
  const Size3 sizes[] = {{1, 1, 1},       {15, 17, 16},    {16, 16, 17},   {17, 15, 15},
                         {127, 129, 128}, {128, 255, 129}, {129, 257, 127}, {255, 16, 257},
                         {257, 128, 1},   {1, 257, 255},   {130, 300, 64}};
  uint64_t seed = 100;
  for (const Size3& s : sizes) {
    for (int t = 0; t < 4; ++t) {
      GemmCase c{s.M, s.N, s.K};
      c.trans_a = (t & 1) != 0;
      c.trans_b = (t & 2) != 0;
      c = aligned(c);
      EXPECT_EQ(check_gemm(c, DType::bf16, seed++), "bf16_tensor_core") << describe(c, DType::bf16);
    }
  }
}

TEST(GpuGemmTiled, Bf16TensorCoreBatchesAlphaBetaAndNanOutput) {
  SKIP_WITHOUT_CUDA();
  UseGemm tiled(CudaGemm::tiled);
  WithoutWgmma mma_sync;
  std::vector<GemmCase> cases;
  for (int t = 0; t < 4; ++t) {
    GemmCase c{33, 47, 40};
    c.trans_a = (t & 1) != 0;
    c.trans_b = (t & 2) != 0;
    c.batch = 3;
    cases.push_back(c);  // separate matrices per batch, beta 0 over NaN
    c.share_a = true;    // A broadcast (batch stride 0)
    c.alpha = -0.5;
    cases.push_back(c);
    c.share_a = false;
    c.share_b = true;  // B broadcast
    c.alpha = 2;
    c.beta = 0.75;
    cases.push_back(c);
    c.share_b = false;
    c.beta = -1;
    c.pad_c = 3;  // odd row stride of C: single stores instead of pairs
    cases.push_back(c);
  }
  {
    GemmCase c{129, 257, 255};  // more than one block tile in M and N, with batches
    c.batch = 2;
    c.alpha = 0.25;
    c.beta = 1;
    cases.push_back(c);
  }
  uint64_t seed = 200;
  for (GemmCase c : cases) {
    c = aligned(c);
    EXPECT_EQ(check_gemm(c, DType::bf16, seed++), "bf16_tensor_core") << describe(c, DType::bf16);
  }
}

TEST(GpuGemmTiled, Bf16UnalignedRowsFallBackToTheGeneralKernel) {
  SKIP_WITHOUT_CUDA();
  UseGemm tiled(CudaGemm::tiled);
  GemmCase c{37, 29, 45};  // rows of 45 and 29 elements: not 16-byte multiples
  EXPECT_EQ(check_gemm(c, DType::bf16, 300), "simt_64");
  c.trans_a = c.trans_b = true;
  c.beta = 0.5;
  c.bias = true;
  c.act = GemmActivation::gelu;
  EXPECT_EQ(check_gemm(c, DType::bf16, 301), "simt_64");
  // B's rows aligned, A's rows of 20 elements (40 bytes) not, with batches.
  GemmCase d{16, 16, 16};
  d.batch = 2;
  d.pad_a = 4;
  EXPECT_EQ(check_gemm(d, DType::bf16, 302), "simt_64");
}

// ---- the f32 kernel

TEST(GpuGemmTiled, F32AtTileEdgesEveryTranspose) {
  SKIP_WITHOUT_CUDA();
  UseGemm tiled(CudaGemm::tiled);
  // Sizes around the block tile (128 x 128), a thread's 4-wide runs and the K slice (8).
  const Size3 sizes[] = {{1, 1, 1},     {3, 5, 7},      {127, 128, 8}, {128, 129, 9},
                         {129, 127, 33}, {255, 1, 17},  {1, 257, 16},  {257, 131, 65}};
  uint64_t seed = 400;
  for (const Size3& s : sizes) {
    for (int t = 0; t < 4; ++t) {
      GemmCase c{s.M, s.N, s.K};
      c.trans_a = (t & 1) != 0;
      c.trans_b = (t & 2) != 0;
      // Alternate float4 reads (rows padded to 4 floats) and single ones (odd row strides).
      if ((s.M + t) % 2 == 0) {
        c.pad_a = (4 - a_cols(c) % 4) % 4;
        c.pad_b = (4 - b_cols(c) % 4) % 4;
        c.pad_c = (4 - s.N % 4) % 4;
      } else {
        c.pad_a = a_cols(c) % 2 == 0 ? 1 : 0;
        c.pad_b = b_cols(c) % 2 == 0 ? 1 : 0;
        c.pad_c = 1;
      }
      EXPECT_EQ(check_gemm(c, DType::f32, seed++), "f32_simt_128") << describe(c, DType::f32);
    }
  }
}

TEST(GpuGemmTiled, F32BatchesAlphaBeta) {
  SKIP_WITHOUT_CUDA();
  UseGemm tiled(CudaGemm::tiled);
  uint64_t seed = 500;
  for (int t = 0; t < 4; ++t) {
    GemmCase c{70, 130, 41};
    c.trans_a = (t & 1) != 0;
    c.trans_b = (t & 2) != 0;
    c.batch = 3;
    c.share_a = t == 1;
    c.share_b = t == 2;
    c.alpha = 1.5;
    c.beta = t == 3 ? 0 : -0.5;
    check_gemm(c, DType::f32, seed++);
  }
}

// ---- the fused epilogue, in every kernel and after cuBLAS

TEST(GpuGemmEpilogue, BiasAndActivationsInEveryKernel) {
  SKIP_WITHOUT_CUDA();
  const GemmActivation acts[] = {GemmActivation::none, GemmActivation::relu, GemmActivation::gelu,
                                 GemmActivation::gelu_tanh, GemmActivation::quick_gelu};
  uint64_t seed = 600;
  for (CudaGemm g : {CudaGemm::tiled, CudaGemm::cublas}) {
    UseGemm use(g);
    for (DType dt : {DType::bf16, DType::f32, DType::f64}) {
      for (GemmActivation act : acts) {
        for (int variant = 0; variant < 3; ++variant) {
          GemmCase c{45, 136, 72};  // aligned rows: the tensor-core kernel for bf16
          c.trans_b = true;       // a linear layer: weight stored [N, K]
          c.act = act;
          c.bias = variant != 0;
          c.bias_per_row = variant == 2;
          if (variant == 2) {
            c.alpha = 0.5;
            c.beta = 0.5;
            c.batch = 2;
            c.share_b = true;
          }
          SCOPED_TRACE(cuda_gemm_name(g));
          check_gemm(dt == DType::bf16 ? aligned(c) : c, dt, seed++);
        }
      }
    }
  }
}

// ---- linear and linear_act on CUDA against the CPU

class GpuLinearAct : public GemmBackendTest {};

TEST_P(GpuLinearAct, FusedForwardMatchesTheCpu) {
  SKIP_WITHOUT_CUDA();
  const LinearAct acts[] = {LinearAct::none, LinearAct::relu, LinearAct::gelu,
                            LinearAct::gelu_tanh, LinearAct::quick_gelu};
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    // x [3, 37, 72] (inner 72: bf16 rows 16-byte aligned), weight [130, 72], bias [130].
    Tensor x = cpu_rand({3, 37, 72}, dt, 700), w = cpu_rand({130, 72}, dt, 701, -0.3, 0.3);
    Tensor b = cpu_rand({130}, dt, 702);
    // The same weight stored transposed ([72, 130], read as its .t()).
    Tensor w_t = w.t().contiguous();
    Tol tol = dt == DType::f32 ? Tol{1e-4, 1e-4} : tol_for(dt);
    for (LinearAct act : acts) {
      for (int variant = 0; variant < 3; ++variant) {
        SCOPED_TRACE(str_cat(dtype_name(dt), " act ", int(act), " variant ", variant));
        const Tensor bias = variant == 1 ? Tensor() : b;
        const Tensor want = linear_act(variant == 2 ? x.transpose(0, 1) : x,
                                       variant == 2 ? w_t.t() : w, bias, act);
        const Tensor xg = x.to(gpu()), wg = w.to(gpu()), wtg = w_t.to(gpu());
        const Tensor bg = bias.defined() ? bias.to(gpu()) : bias;
        // variant 2: a non-contiguous input and the weight read in its transposed storage.
        const Tensor got = linear_act(variant == 2 ? xg.transpose(0, 1) : xg,
                                      variant == 2 ? wtg.t() : wg, bg, act);
        ASSERT_EQ(got.device(), gpu());
        ASSERT_EQ(got.shape(), want.shape());
        EXPECT_TRUE(all_close(got.to(Device::cpu()), want, tol.atol, tol.rtol));
      }
    }
  }
}

TEST_P(GpuLinearAct, BackwardMatchesTheCpu) {
  SKIP_WITHOUT_CUDA();
  for (LinearAct act : {LinearAct::none, LinearAct::gelu, LinearAct::quick_gelu}) {
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor x = cpu_rand({4, 5, 24}, dt, 710), w = cpu_rand({17, 24}, dt, 711, -0.5, 0.5);
      Tensor b = cpu_rand({17}, dt, 712);
      auto f = [act](const std::vector<Tensor>& v) { return linear_act(v[0], v[1], v[2], act); };
      Tol tol = dt == DType::f32 ? Tol{1e-4, 1e-4} : tol_for(dt);
      expect_gpu_matches_cpu(f, {x, w, b}, tol, true, str_cat(dtype_name(dt), " act ", int(act)));
    }
  }
}

TEST_P(GpuLinearAct, Bf16LinearRoundsOnce) {
  SKIP_WITHOUT_CUDA();
  // bias joins the f32 sum before the single rounding to bf16, as on the CPU (linear_bf16).
  Tensor x = cpu_rand({40, 64}, DType::bf16, 720), w = cpu_rand({24, 64}, DType::bf16, 721);
  Tensor b = cpu_rand({24}, DType::bf16, 722);
  const Tensor want = linear(x, w, b);
  const Tensor got = linear(x.to(gpu()), w.to(gpu()), b.to(gpu()));
  EXPECT_TRUE(all_close(got.to(Device::cpu()), want, 3e-2, 1e-2));
}

INSTANTIATE_TEST_SUITE_P(Backends, GpuLinearAct,
                         ::testing::Values(CudaGemm::cublas, CudaGemm::tiled),
                         [](const ::testing::TestParamInfo<CudaGemm>& i) {
                           return std::string(cuda_gemm_name(i.param));
                         });

}  // namespace
}  // namespace shallow::testing
