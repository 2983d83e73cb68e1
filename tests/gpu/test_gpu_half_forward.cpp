// bf16/f16 inference on CUDA: with nothing recorded for autograd, unary, binary and layer norm
// run on the 16-bit tensors directly (computed in f32, rounded once) instead of converting
// around each op. The CPU converts; both must give the same values up to one rounding step.
// Also the binary kernel's layouts in f32: operands that repeat with a period (a bias over
// rows, a scalar) and vector widths that do not divide the sizes.
#include "engine/autograd.h"
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

}  // namespace
}  // namespace shallow::testing
