// The Hopper bf16 GEMM (wgmma fed by TMA, kernels/cuda/gemm_bf16_wgmma.cu) through
// gpu::gemm_ex with CudaGemm::tiled: that it is the kernel chosen on a compute capability 9.0
// device (and only there), then every element of C against a double product of the same
// bf16 inputs, at sizes around its tiles (128 x 256 x 64) in M, N and K, every transpose,
// K long enough to cycle the stage ring several times, more tiles than SMs (the persistent
// blocks take several each), batches (stride 0 included),
// alpha/beta, row strides of C that force single stores, and the fused bias and activations.
// On other GPUs the same cases run on the mma.sync kernel.
#include <algorithm>
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

// Selects the tiled kernels (and whether wgmma may run) for one test, then restores both.
class UseTiled {
 public:
  explicit UseTiled(bool wgmma = true)
      : gemm_(cuda_gemm()), wgmma_(gpu::bf16_wgmma_allowed()), cluster_(gpu::bf16_wgmma_cluster()) {
    set_cuda_gemm(CudaGemm::tiled);
    gpu::set_bf16_wgmma_allowed(wgmma);
  }
  ~UseTiled() {
    set_cuda_gemm(gemm_);
    gpu::set_bf16_wgmma_allowed(wgmma_);
    gpu::set_bf16_wgmma_cluster(cluster_);
  }

 private:
  CudaGemm gemm_;
  bool wgmma_;
  int cluster_;
};

// The wgmma kernel's two shapes: single CTAs, and clusters of two sharing B by multicast.
constexpr int kClusterShapes[] = {1, 2};

bool on_hopper() { return gpu::cuda_compute_capability(0) == 90; }

struct Case {
  int64_t M, N, K;
  bool trans_a = false, trans_b = true;  // default: a linear layer, weight stored [N, K]
  int64_t batch = 1;
  bool share_a = false, share_b = false;  // batch stride 0
  int64_t overlap_a = 0;  // > 0: A's matrices start this many stored rows apart (they overlap)
  double alpha = 1, beta = 0;
  bool bias = false, bias_per_row = false;
  GemmActivation act = GemmActivation::none;
  int64_t pad_c = 0;  // extra elements per row of C
};

std::string describe(const Case& c) {
  return str_cat("M ", c.M, " N ", c.N, " K ", c.K, c.trans_a ? " A^T" : "",
                 c.trans_b ? " B^T" : "", " batch ", c.batch, c.share_a ? " (A shared)" : "",
                 c.share_b ? " (B shared)" : "", c.overlap_a ? " (A overlapping)" : "",
                 " alpha ", c.alpha, " beta ", c.beta,
                 c.bias ? (c.bias_per_row ? " bias/row" : " bias/col") : "", " act ", int(c.act),
                 " pad_c ", c.pad_c);
}

// Rows of `cols` elements padded to a multiple of 8 (16 bytes of bf16), as TMA requires.
int64_t padded(int64_t cols) { return (cols + 7) / 8 * 8; }

// Runs the case and checks every element of C (and that the padding of C's rows stays NaN)
// with test_gpu_gemm's tolerance rule: 1.5 * 2^-8 of the output's size plus the f32 sums'
// rounding. Returns the kernel CudaGemm::tiled chose.
std::string check_case(const Case& c, uint64_t seed) {
  SCOPED_TRACE(describe(c));
  const int64_t M = c.M, N = c.N, K = c.K;
  const int64_t a_rows = c.trans_a ? K : M, a_cols = c.trans_a ? M : K;
  const int64_t b_rows = c.trans_b ? N : K, b_cols = c.trans_b ? K : N;
  const int64_t lda = padded(a_cols), ldb = padded(b_cols), ldc = N + c.pad_c;
  // Stored rows from one matrix to the next: a matrix's rows, none (shared) or fewer (overlap).
  const int64_t step_a = c.share_a ? 0 : (c.overlap_a > 0 ? c.overlap_a : a_rows);
  const int64_t step_b = c.share_b ? 0 : b_rows;
  const Tensor a = cpu_rand({a_rows + step_a * (c.batch - 1), lda}, DType::bf16, seed, -1.0, 1.0);
  const Tensor b = cpu_rand({b_rows + step_b * (c.batch - 1), ldb}, DType::bf16, seed + 1, -1.0, 1.0);
  const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  const int64_t stride_a = step_a * lda, stride_b = step_b * ldb;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor c0 = c.beta != 0 ? cpu_rand({c.batch, M, ldc}, DType::bf16, seed + 2, -1.0, 1.0)
                          : Tensor::full({c.batch, M, ldc}, nan, DType::bf16);
  if (c.beta != 0 && c.pad_c > 0) c0.slice(2, N, ldc).fill_(nan);
  const std::vector<double> c0v = c0.to_vector<double>();
  Tensor bias;
  std::vector<double> biasv;
  if (c.bias) {
    bias = cpu_rand({c.bias_per_row ? M : N}, DType::bf16, seed + 3, -1.0, 1.0);
    biasv = bias.to_vector<double>();
  }

  const Tensor a_dev = a.to(gpu()), b_dev = b.to(gpu());
  Tensor c_dev = c0.to(gpu());
  gpu::GemmEpilogueArgs ep;
  if (c.bias) ep.bias = bias.to(gpu());
  ep.bias_per_row = c.bias_per_row;
  ep.act = c.act;
  const std::string kernel =
      gpu::tiled_gemm_kernel(c.batch, a_dev, lda, stride_a, b_dev, ldb, stride_b);
  gpu::gemm_ex(c.batch, c.trans_a, c.trans_b, M, N, K, c.alpha, a_dev, lda, stride_a, b_dev, ldb,
               stride_b, c.beta, c_dev, ldc, M * ldc, ep, "test_gemm_wgmma");
  const std::vector<double> got = c_dev.to(Device::cpu()).to_vector<double>();

  auto a_at = [&](int64_t m, int64_t i, int64_t k) {
    const int64_t r = c.trans_a ? k : i, col = c.trans_a ? i : k;
    return av[size_t((m * step_a + r) * lda + col)];
  };
  auto b_at = [&](int64_t m, int64_t k, int64_t j) {
    const int64_t r = c.trans_b ? j : k, col = c.trans_b ? k : j;
    return bv[size_t((m * step_b + r) * ldb + col)];
  };
  // the steps are 0 for shared operands, so batch b's matrix is found the same way for all
  const GemmShape shape{DType::bf16, c.batch, M, N, K, ldc, c.alpha, c.beta, c.bias_per_row, c.act};
  expect_gemm_result(shape, a_at, b_at, c0v, biasv, got);
  return kernel;
}

// The kernel the tiled GEMM must choose for aligned bf16 operands on this device.
std::string expected_kernel() { return on_hopper() ? "bf16_wgmma" : "bf16_tensor_core"; }

TEST(GpuGemmWgmma, ChosenOnHopperOnly) {
  SKIP_WITHOUT_CUDA();
  UseTiled tiled;
  Case c{64, 64, 64};
  EXPECT_EQ(check_case(c, 1), expected_kernel())
      << "compute capability " << gpu::cuda_compute_capability(0)
      << (on_hopper() ? ": the build must include sm_90a (CMAKE_CUDA_ARCHITECTURES=90a)" : "");
  // Switched off, the mma.sync kernel runs the same operands.
  gpu::set_bf16_wgmma_allowed(false);
  EXPECT_EQ(check_case(c, 2), "bf16_tensor_core");
}

TEST(GpuGemmWgmma, TileEdgesEveryTranspose) {
  SKIP_WITHOUT_CUDA();
  UseTiled tiled;
  for (int cluster : kClusterShapes) {
    SCOPED_TRACE(str_cat("wgmma cluster of ", cluster));
    gpu::set_bf16_wgmma_cluster(cluster);
    const std::string want = expected_kernel();
    // Each edge size in each of M, N and K, the other two at sizes that cross a tile edge too.
    const int64_t edges[] = {1, 63, 64, 65, 127, 128, 129, 255, 256, 257};
    struct Size {
      int64_t M, N, K;
    };
    std::vector<Size> sizes;
    for (int64_t e : edges) {
      sizes.push_back({e, 129, 65});
      sizes.push_back({65, e, 129});
      sizes.push_back({129, 65, e});
    }
    sizes.push_back({257, 257, 257});
    sizes.push_back({1, 1, 1});
    uint64_t seed = 100;
    for (const Size& s : sizes) {
      for (int t = 0; t < 4; ++t) {
        Case c{s.M, s.N, s.K};
        c.trans_a = (t & 1) != 0;
        c.trans_b = (t & 2) != 0;
        EXPECT_EQ(check_case(c, seed++), want) << describe(c);
      }
    }
  }
}

TEST(GpuGemmWgmma, LongKCyclesTheStageRing) {
  SKIP_WITHOUT_CUDA();
  UseTiled tiled;
  for (int cluster : kClusterShapes) {
    SCOPED_TRACE(str_cat("wgmma cluster of ", cluster));
    gpu::set_bf16_wgmma_cluster(cluster);
    // 17 and 32 slices of 64: the 4-stage ring wraps several times (both barrier parities).
    uint64_t seed = 200;
    for (int64_t K : {1071, 2048}) {
      for (int t = 0; t < 4; ++t) {
        Case c{130, 260, K};
        c.trans_a = (t & 1) != 0;
        c.trans_b = (t & 2) != 0;
        EXPECT_EQ(check_case(c, seed++), expected_kernel()) << describe(c);
      }
    }
  }
}

// More tiles than an H100 has SMs (132): blocks walk several tiles each, the stage ring runs on
// from one tile into the next (2 K slices per tile, 4 stages), across batch boundaries.
TEST(GpuGemmWgmma, SeveralTilesPerBlock) {
  SKIP_WITHOUT_CUDA();
  UseTiled tiled;
  for (int cluster : kClusterShapes) {
    SCOPED_TRACE(str_cat("wgmma cluster of ", cluster));
    gpu::set_bf16_wgmma_cluster(cluster);
    uint64_t seed = 250;
    for (int t = 0; t < 4; ++t) {
      Case c{129, 257, 72};  // 2 x 2 tiles per matrix, 40 matrices: 160 tiles
      c.trans_a = (t & 1) != 0;
      c.trans_b = (t & 2) != 0;
      c.batch = 40;
      c.share_b = t == 1;
      c.alpha = t == 2 ? -1.5 : 1;
      c.beta = t == 3 ? 0.5 : 0;
      EXPECT_EQ(check_case(c, seed++), expected_kernel()) << describe(c);
    }
    Case c{1000, 1000, 40};  // 8 x 4 tiles of one matrix, each a single partial K slice
    c.batch = 5;
    EXPECT_EQ(check_case(c, seed++), expected_kernel()) << describe(c);
  }
}

TEST(GpuGemmWgmma, BatchesAlphaBetaAndSingleStores) {
  SKIP_WITHOUT_CUDA();
  UseTiled tiled;
  for (int cluster : kClusterShapes) {
    SCOPED_TRACE(str_cat("wgmma cluster of ", cluster));
    gpu::set_bf16_wgmma_cluster(cluster);
    std::vector<Case> cases;
    for (int t = 0; t < 4; ++t) {
      Case c{70, 200, 72};
      c.trans_a = (t & 1) != 0;
      c.trans_b = (t & 2) != 0;
      c.batch = 3;
      cases.push_back(c);  // a matrix per batch, beta 0 over a C full of NaN
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
      Case c{129, 257, 255};  // several block tiles in M and N, with batches
      c.batch = 2;
      c.alpha = 0.25;
      c.beta = 1;
      cases.push_back(c);
    }
    {
      Case c{70, 200, 72};  // A's matrices overlap (8 rows apart): TMA cannot map them, and the
      c.batch = 3;          // product goes to the mma.sync kernel
      c.overlap_a = 8;
      cases.push_back(c);
    }
    {
      Case c{65, 129, 0};  // K == 0: C = beta C + bias, nothing loaded
      c.beta = 0.5;
      c.bias = true;
      cases.push_back(c);
    }
    uint64_t seed = 300;
    for (const Case& c : cases) EXPECT_EQ(check_case(c, seed++), expected_kernel()) << describe(c);
  }
}

TEST(GpuGemmWgmma, BiasAndActivations) {
  SKIP_WITHOUT_CUDA();
  UseTiled tiled;
  for (int cluster : kClusterShapes) {
    SCOPED_TRACE(str_cat("wgmma cluster of ", cluster));
    gpu::set_bf16_wgmma_cluster(cluster);
    const GemmActivation acts[] = {GemmActivation::none, GemmActivation::relu, GemmActivation::gelu,
                                   GemmActivation::gelu_tanh, GemmActivation::quick_gelu};
    uint64_t seed = 400;
    for (GemmActivation act : acts) {
      for (int variant = 0; variant < 3; ++variant) {
        Case c{145, 264, 136};  // a linear layer: weight stored [N, K]
        c.trans_b = variant != 1;
        c.act = act;
        c.bias = variant != 0;
        c.bias_per_row = variant == 2;
        if (variant == 2) {
          c.alpha = 0.5;
          c.beta = 0.5;
          c.batch = 2;
          c.share_b = true;
        }
        EXPECT_EQ(check_case(c, seed++), expected_kernel()) << describe(c);
      }
    }
  }
}

// linear on CUDA in bf16 against the CPU op, where the product runs on the wgmma kernel:
// [B, S, in] x [out, in]^T + bias, forward only (bf16 has no gradient check here).
TEST(GpuGemmWgmma, Bf16LinearMatchesTheCpu) {
  SKIP_WITHOUT_CUDA();
  UseTiled tiled;
  Tensor x = cpu_rand({3, 77, 136}, DType::bf16, 500), w = cpu_rand({200, 136}, DType::bf16, 501);
  Tensor b = cpu_rand({200}, DType::bf16, 502);
  for (LinearAct act : {LinearAct::none, LinearAct::gelu}) {
    const Tensor want = linear_act(x, w, b, act);
    const Tensor got = linear_act(x.to(gpu()), w.to(gpu()), b.to(gpu()), act);
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_TRUE(all_close(got.to(Device::cpu()), want, 3e-2, 1e-2)) << "act " << int(act);
  }
}

}  // namespace
}  // namespace shallow::testing
