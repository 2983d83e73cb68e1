// bf16/f16 inference on CUDA: with nothing recorded for autograd, unary, binary and layer norm
// run on the 16-bit tensors directly (computed in f32, rounded once) instead of converting
// around each op. The CPU converts; both must give the same values up to one rounding step.
// Also the binary kernel's layouts in f32: operands that repeat with a period (a bias over
// rows, a scalar) and vector widths that do not divide the sizes.
#include <limits>

#include "engine/autograd.h"
#include "engine/cuda/gemm_cublaslt_ops.h"
#include "engine/cuda/gemm_ops.h"
#include "tests/gpu/gemm_reference.h"
#include "tests/gpu/gpu_test.h"

namespace shallow::testing {
namespace {

// fn on the CPU and on the GPU without autograd; outputs compared.
void expect_forward_matches(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                            const std::vector<Tensor>& inputs, Tol tol, const std::string& what) {
  SCOPED_TRACE(what);
  NoGrad no_grad;
  std::vector<Tensor> on_gpu;
  for (const Tensor& t : inputs) on_gpu.push_back(t.to(gpu()));
  const Tensor expected = fn(inputs), got = fn(on_gpu);
  ASSERT_EQ(got.device(), gpu());
  ASSERT_EQ(got.dtype(), expected.dtype());
  ASSERT_EQ(got.shape(), expected.shape());
  EXPECT_TRUE(all_close(got.to(Device::cpu()).to(DType::f32), expected.to(DType::f32), tol.atol,
                        tol.rtol));
}

const DType kHalves[] = {DType::bf16, DType::f16};

TEST(GpuHalfForward, UnaryOpsOnAlignedAndOddSizes) {
  SKIP_WITHOUT_CUDA();
  const std::vector<std::pair<const char*, Tensor (*)(const Tensor&)>> ops = {
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"quick_gelu", [](const Tensor& x) { return quick_gelu(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }}};
  for (DType dt : kHalves) {
    for (int64_t n : {1, 7, 8, 9, 4096, 4103}) {
      const Tensor x = cpu_rand({n}, dt, uint64_t(n));
      for (const auto& [name, op] : ops) {
        expect_forward_matches([op = op](const auto& in) { return op(in[0]); }, {x}, tol_for(dt),
                               std::string(name) + " " + dtype_name(dt) + " n=" + std::to_string(n));
        // from the second element: not 16-byte aligned, so the one-element path runs
        expect_forward_matches([op = op](const auto& in) { return op(in[0].slice(0, 1, in[0].size(0))); },
                               {x}, tol_for(dt), std::string(name) + " offset 1");
      }
    }
  }
}

TEST(GpuHalfForward, BinaryWithBiasRowsScalarsAndColumns) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::bf16, DType::f16, DType::f32}) {
    const Tol tol = tol_for(dt);
    for (int64_t d : {8, 12, 13, 768}) {
      const std::string tag = std::string(dtype_name(dt)) + " d=" + std::to_string(d);
      const Tensor x = cpu_rand({3, 5, d}, dt, 1), y = cpu_rand({3, 5, d}, dt, 2);
      const Tensor bias = cpu_rand({d}, dt, 3), col = cpu_rand({3, 5, 1}, dt, 4);
      const Tensor one = cpu_rand({1}, dt, 5);
      expect_forward_matches([](const auto& in) { return add(in[0], in[1]); }, {x, y}, tol, "same shape " + tag);
      expect_forward_matches([](const auto& in) { return add(in[0], in[1]); }, {x, bias}, tol, "bias " + tag);
      expect_forward_matches([](const auto& in) { return sub(in[1], in[0]); }, {x, bias}, tol, "bias first " + tag);
      expect_forward_matches([](const auto& in) { return mul(in[0], in[1]); }, {x, one}, tol, "scalar " + tag);
      expect_forward_matches([](const auto& in) { return div(in[0], in[1]); }, {x, col}, tol, "column " + tag);
      expect_forward_matches([](const auto& in) { return add(in[0].transpose(0, 1), in[1].transpose(0, 1)); },
                             {x, y}, tol, "transposed " + tag);
      expect_forward_matches([](const auto& in) { return maximum(in[0].slice(2, 1, in[0].size(2)), in[1].slice(2, 1, in[1].size(2))); },
                             {x, y}, tol, "sliced " + tag);
    }
  }
}

TEST(GpuHalfForward, LayerNormRowsWithAndWithoutAffine) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kHalves) {
    for (int64_t n : {1, 31, 768, 1030}) {
      const Tensor x = cpu_rand({6, n}, dt, 7, -3, 5);
      const Tensor w = cpu_rand({n}, dt, 8), b = cpu_rand({n}, dt, 9);
      const std::string tag = std::string(dtype_name(dt)) + " n=" + std::to_string(n);
      expect_forward_matches([n](const auto& in) { return layer_norm(in[0], Shape{n}, in[1], in[2], 1e-5); },
                             {x, w, b}, tol_for(dt), "affine " + tag);
      expect_forward_matches([n](const auto& in) { return layer_norm(in[0], Shape{n}); }, {x},
                             tol_for(dt), "plain " + tag);
    }
  }
}

TEST(GpuHalfForward, WithAutogradTheConvertingPathStillGivesGradients) {
  SKIP_WITHOUT_CUDA();
  const Tensor x = cpu_rand({4, 24}, DType::bf16, 11);
  const Tensor w = cpu_rand({24}, DType::bf16, 12);
  expect_gpu_matches_cpu([](const auto& in) { return gelu(layer_norm(in[0], Shape{24}, in[1])); },
                         {x, w}, tol_for(DType::bf16), true, "layer_norm + gelu, bf16");
}

// ---- layer norm: the 16-byte chunk kernel and the kernels it falls back to

// The [rows, n] view of a flat tensor that starts one element into it: on the device, a pointer
// 2 or 4 bytes past a 16-byte boundary (the flat tensor is copied to the device whole, so the
// view is made inside the compared function).
Tensor shifted_rows(const Tensor& flat, int64_t rows, int64_t n) {
  return flat.slice(0, 1, rows * n + 1).view({rows, n});
}

TEST(GpuHalfForward, LayerNormChunkRowsAndEveryFallback) {
  SKIP_WITHOUT_CUDA();
  // 768 (the ViT: 3 chunks of 8 bf16 per lane, 6 of 4 floats), 8 (one chunk, 31 idle lanes),
  // 1024 (the most the chunk kernel takes), 1032 (the block kernel), 7 (not whole chunks:
  // the warp kernel).
  for (DType dt : {DType::bf16, DType::f16, DType::f32}) {
    const Tol tol = tol_for(dt);
    for (int64_t n : {768, 8, 1024, 1032, 7}) {
      const std::string tag = std::string(dtype_name(dt)) + " n=" + std::to_string(n);
      const Tensor x = cpu_rand({37, n}, dt, 20 + uint64_t(n), -3, 5);
      const Tensor w = cpu_rand({n}, dt, 21), b = cpu_rand({n}, dt, 22);
      const Tensor x3 = cpu_rand({2, 19, n}, dt, 23, -1, 1);
      expect_forward_matches([n](const auto& in) { return layer_norm(in[0], Shape{n}, in[1], in[2], 1e-5); },
                             {x, w, b}, tol, "affine " + tag);
      expect_forward_matches([n](const auto& in) { return layer_norm(in[0], Shape{n}, in[1], Tensor(), 1e-5); },
                             {x, w}, tol, "weight only " + tag);
      expect_forward_matches([n](const auto& in) { return layer_norm(in[0], Shape{n}, Tensor(), in[1], 1e-5); },
                             {x, b}, tol, "bias only " + tag);
      expect_forward_matches([n](const auto& in) { return layer_norm(in[0], Shape{n}); }, {x}, tol,
                             "plain " + tag);
      expect_forward_matches([n](const auto& in) { return layer_norm(in[0], Shape{n}, in[1], in[2], 1e-6); },
                             {x3, w, b}, tol, "3-d input " + tag);
      // Data one element past a 16-byte boundary: the input, the weight, the bias (the others
      // aligned): each must leave the chunk kernel.
      const Tensor x_flat = cpu_rand({37 * n + 1}, dt, 24, -3, 5);
      const Tensor p_flat = cpu_rand({n + 1}, dt, 25);
      expect_forward_matches([n](const auto& in) { return layer_norm(shifted_rows(in[0], 37, n), Shape{n}, in[1], in[2], 1e-5); },
                             {x_flat, w, b}, tol, "input at offset 1 " + tag);
      expect_forward_matches([n](const auto& in) { return layer_norm(in[0], Shape{n}, shifted_rows(in[1], 1, n).view({n}), in[2], 1e-5); },
                             {x, p_flat, b}, tol, "weight at offset 1 " + tag);
      expect_forward_matches([n](const auto& in) { return layer_norm(in[0], Shape{n}, in[1], shifted_rows(in[2], 1, n).view({n}), 1e-5); },
                             {x, w, p_flat}, tol, "bias at offset 1 " + tag);
    }
  }
}

TEST(GpuHalfForward, LayerNormChunkKernelSavesTheStatisticsForTheBackward) {
  SKIP_WITHOUT_CUDA();
  // f32 rows of whole chunks run the chunk kernel, also under autograd; its mean and rstd feed
  // the backward. bf16 with autograd computes in f32 (the converting path), so the same.
  for (int64_t n : {768, 8, 1024}) {
    const Tensor x = cpu_rand({6, n}, DType::f32, 30, -3, 5);
    const Tensor w = cpu_rand({n}, DType::f32, 31, 0.5, 1.5), b = cpu_rand({n}, DType::f32, 32);
    expect_gpu_matches_cpu([n](const auto& in) { return layer_norm(in[0], Shape{n}, in[1], in[2], 1e-5); },
                           {x, w, b}, {1e-4, 1e-4}, true, "f32 n=" + std::to_string(n));
    const Tensor h = cpu_rand({6, n}, DType::bf16, 33, -3, 5);
    expect_gpu_matches_cpu([n](const auto& in) { return layer_norm(in[0], Shape{n}); }, {h},
                           tol_for(DType::bf16), true, "bf16 n=" + std::to_string(n));
  }
}

TEST(GpuHalfForward, LayerNormManyRows) {
  SKIP_WITHOUT_CUDA();
  // More rows than one launch's warps cover at 8 warps per block and an odd row count.
  for (DType dt : {DType::bf16, DType::f32}) {
    const Tensor x = cpu_rand({20011, 16}, dt, 40, -3, 5);
    const Tensor w = cpu_rand({16}, dt, 41), b = cpu_rand({16}, dt, 42);
    expect_forward_matches([](const auto& in) { return layer_norm(in[0], Shape{16}, in[1], in[2], 1e-5); },
                           {x, w, b}, tol_for(dt), std::string("20011 rows ") + dtype_name(dt));
  }
}

// ---- the GEMM epilogue after cuBLAS (gemm_bias_act): C = act(A B + bias) in a pass of its own

using cpu::GemmActivation;

// The GEMM setting for one test, with cuBLASLt's epilogue off so that every bias and
// activation reaches the separate pass (gemm_bias_act) under test; both restored after.
class WithCudaGemm {
 public:
  explicit WithCudaGemm(CudaGemm g) : previous_(cuda_gemm()), lt_(gpu::cublaslt_allowed()) {
    set_cuda_gemm(g);
    gpu::set_cublaslt_allowed(false);
  }
  ~WithCudaGemm() {
    set_cuda_gemm(previous_);
    gpu::set_cublaslt_allowed(lt_);
  }

 private:
  CudaGemm previous_;
  bool lt_;
};

struct EpilogueCase {
  int64_t batch, M, N, K;
  GemmActivation act = GemmActivation::none;
  bool bias = false, bias_per_row = false;
  int64_t pad_c = 0;        // extra elements per row of C (ldc = N + pad_c)
  int64_t c_offset = 0;     // C starts this many elements into its storage
  int64_t bias_offset = 0;  // the bias likewise
};

std::string describe(const EpilogueCase& c, DType dt) {
  return str_cat(dtype_name(dt), " batch ", c.batch, " M ", c.M, " N ", c.N, " K ", c.K, " act ",
                 int(c.act), c.bias ? (c.bias_per_row ? " bias/row" : " bias/col") : "",
                 " pad_c ", c.pad_c, " c_offset ", c.c_offset, " bias_offset ", c.bias_offset);
}

// Runs the case with gpu::gemm_ex on cuBLAS (so the epilogue is gemm_bias_act) and checks every
// element against the double product of the same values, and that C's row padding stays NaN.
void check_cublas_epilogue(const EpilogueCase& c, DType dt, uint64_t seed) {
  SCOPED_TRACE(describe(c, dt));
  WithCudaGemm use(CudaGemm::cublas);
  const int64_t ldc = c.N + c.pad_c, c_numel = c.batch * c.M * ldc;
  const Tensor a = cpu_rand({c.batch, c.M, c.K}, dt, seed, -1, 1);
  const Tensor b = cpu_rand({c.batch, c.K, c.N}, dt, seed + 1, -1, 1);
  const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor c_store = Tensor::full({c_numel + c.c_offset}, nan, dt).to(gpu());
  Tensor c_dev = c_store.slice(0, c.c_offset, c_numel + c.c_offset).view({c.batch, c.M, ldc});
  gpu::GemmEpilogueArgs ep;
  std::vector<double> bias_v;
  if (c.bias) {
    // Made on the device with its offset (a copy to the device would start at 0).
    const int64_t len = c.bias_per_row ? c.M : c.N;
    const Tensor stored = cpu_rand({len + c.bias_offset}, dt, seed + 2, -1, 1);
    bias_v = stored.slice(0, c.bias_offset, len + c.bias_offset).to_vector<double>();
    ep.bias = stored.to(gpu()).slice(0, c.bias_offset, len + c.bias_offset);
  }
  ep.bias_per_row = c.bias_per_row;
  ep.act = c.act;
  gpu::gemm_ex(c.batch, false, false, c.M, c.N, c.K, 1.0, a.to(gpu()), c.K, c.M * c.K, b.to(gpu()),
               c.N, c.K * c.N, 0.0, c_dev, ldc, c.M * ldc, ep, "test_gemm_bias_act");
  const std::vector<double> got = c_dev.to(Device::cpu()).to_vector<double>();
  GemmShape shape{dt, c.batch, c.M, c.N, c.K, ldc, 1.0, 0.0, c.bias_per_row, c.act};
  shape.roundings = 2;  // cuBLAS stores the product, the pass rounds again
  expect_gemm_result(
      shape, [&](int64_t m, int64_t i, int64_t k) { return av[size_t((m * c.M + i) * c.K + k)]; },
      [&](int64_t m, int64_t k, int64_t j) { return bv[size_t((m * c.K + k) * c.N + j)]; },
      std::vector<double>(size_t(c_numel), nan), bias_v, got);
}

const GemmActivation kActivations[] = {GemmActivation::none, GemmActivation::relu,
                                       GemmActivation::gelu, GemmActivation::gelu_tanh,
                                       GemmActivation::quick_gelu};

TEST(GpuGemmBiasAct, EveryActivationAndBiasKindOnVectorAndScalarShapes) {
  SKIP_WITHOUT_CUDA();
  // N 3072 (the ViT's MLP: whole 16-byte chunks), 8 (one bf16 chunk a row), 12 (bf16: not
  // whole chunks, the element kernel; f32: three chunks a row); batches of 2 walk across
  // matrices.
  struct Shape3 {
    int64_t batch, M, N, K;
  };
  const Shape3 shapes[] = {{1, 5, 3072, 16}, {2, 37, 8, 24}, {2, 19, 12, 9}};
  uint64_t seed = 900;
  for (DType dt : {DType::bf16, DType::f32}) {
    for (const Shape3& s : shapes) {
      for (GemmActivation act : kActivations) {
        for (int bias_kind = 0; bias_kind < 3; ++bias_kind) {
          EpilogueCase c{s.batch, s.M, s.N, s.K};
          c.act = act;
          c.bias = bias_kind != 0;
          c.bias_per_row = bias_kind == 2;
          check_cublas_epilogue(c, dt, seed++);
        }
      }
    }
  }
}

TEST(GpuGemmBiasAct, UnalignedOperandsTakeTheElementKernel) {
  SKIP_WITHOUT_CUDA();
  uint64_t seed = 950;
  for (DType dt : {DType::bf16, DType::f32}) {
    for (GemmActivation act : {GemmActivation::gelu, GemmActivation::quick_gelu}) {
      EpilogueCase c{2, 13, 64, 8};
      c.act = act;
      c.bias = true;
      EpilogueCase padded = c;  // rows of 67 elements: not 16-byte multiples
      padded.pad_c = 3;
      check_cublas_epilogue(padded, dt, seed++);
      EpilogueCase shifted = c;  // C one element past a 16-byte boundary
      shifted.c_offset = 1;
      check_cublas_epilogue(shifted, dt, seed++);
      EpilogueCase bias_shifted = c;  // the per-column bias likewise
      bias_shifted.bias_offset = 1;
      check_cublas_epilogue(bias_shifted, dt, seed++);
      bias_shifted.bias_per_row = true;  // a per-row bias is read per element: any alignment
      check_cublas_epilogue(bias_shifted, dt, seed++);
    }
  }
}

TEST(GpuGemmBiasAct, LargeOutputsWhereEachThreadWalksSeveralChunks) {
  SKIP_WITHOUT_CUDA();
  // 3 x 1500 x 768 bf16: 432000 chunks, more than the GPU holds threads at once (an H100:
  // 132 multiprocessors x at most 2048), so each thread's walk crosses rows and matrices.
  EpilogueCase c{3, 1500, 768, 2};
  c.act = GemmActivation::quick_gelu;
  c.bias = true;
  check_cublas_epilogue(c, DType::bf16, 990);
  c.bias_per_row = true;
  c.act = GemmActivation::gelu;
  check_cublas_epilogue(c, DType::f32, 991);
  // More than 65535 rows of odd length: the element kernel's row loop.
  EpilogueCase tall{1, 70001, 12, 1};
  tall.act = GemmActivation::relu;
  tall.bias = true;
  tall.pad_c = 1;
  check_cublas_epilogue(tall, DType::bf16, 992);
}

TEST(GpuGemmBiasAct, LinearActOnCublasMatchesTheCpu) {
  SKIP_WITHOUT_CUDA();
  WithCudaGemm use(CudaGemm::cublas);
  // The ViT's MLP in small: x [2, 7, 64] through a [3072, 64] weight.
  for (DType dt : {DType::bf16, DType::f32}) {
    const Tensor x = cpu_rand({2, 7, 64}, dt, 60), w = cpu_rand({3072, 64}, dt, 61, -0.2, 0.2);
    const Tensor b = cpu_rand({3072}, dt, 62);
    const Tol tol = dt == DType::f32 ? Tol{1e-4, 1e-4} : tol_for(dt);
    for (LinearAct act : {LinearAct::none, LinearAct::gelu, LinearAct::quick_gelu}) {
      expect_forward_matches([act](const auto& in) { return linear_act(in[0], in[1], in[2], act); },
                             {x, w, b}, tol,
                             str_cat(dtype_name(dt), " linear_act ", int(act)));
    }
  }
}

}  // namespace
}  // namespace shallow::testing
