// Whole models on CUDA against the same models on the CPU: Module::to, the ViT layer by layer
// (f32 and bf16), and every EEG encoder forward and backward. The CPU models are the reference
// (tests/models checks them against their PyTorch libraries).
#include <cmath>
#include <map>
#include <string>

#include "engine/autograd.h"
#include "engine/nn/layer_norm.h"
#include "engine/nn/linear.h"
#include "models/eeg/encoder.h"
#include "models/vit.h"
#include "tests/gpu/gpu_test.h"

namespace shallow::testing {
namespace {

using models::VisionTransformer;
using models::VitConfig;

// Fills every parameter and buffer with seeded values in [-scale, scale) (zero-initialized
// tokens and position embeddings would hide mistakes).
void randomize(nn::Module& m, uint64_t seed, double scale) {
  NoGrad no_grad;
  for (auto& [name, t] : m.named_parameters()) {
    Tensor v = cpu_rand(t.shape(), DType::f64, seed++, -scale, scale);
    t.copy_(v.to(t.dtype()));
  }
}

// The smallest cosine similarity between matching rows of a and b (flattened to [rows, -1]).
double worst_row_cosine(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(Device::cpu()).to(DType::f64).reshape({a.size(0), -1});
  const Tensor y = b.to(Device::cpu()).to(DType::f64).reshape({b.size(0), -1});
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  const int64_t rows = x.size(0), cols = x.size(1);
  double worst = 1.0;
  for (int64_t r = 0; r < rows; ++r) {
    double xy = 0, xx = 0, yy = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double p = xv[size_t(r * cols + c)], q = yv[size_t(r * cols + c)];
      xy += p * q, xx += p * p, yy += q * q;
    }
    worst = std::min(worst, xy / std::sqrt(xx * yy));
  }
  return worst;
}

TEST(GpuModule, ToMovesEveryTensorInPlaceAndBack) {
  SKIP_WITHOUT_CUDA();
  auto lin = std::make_shared<nn::Linear>(5, 3, true);
  auto seq = std::make_shared<nn::Module>("Seq");
  seq->register_module("lin", lin);
  seq->register_module("norm", std::make_shared<nn::LayerNorm>(Shape{3}));
  seq->register_buffer("count", Tensor::full({2}, 7.0));
  const Tensor weight = lin->weight;  // a handle held outside the module
  const Tensor before = weight.detach().clone();
  lin->weight.set_grad(Tensor::ones({3, 5}));

  seq->to(gpu());
  for (auto& [name, t] : seq->state_dict()) EXPECT_EQ(t.device(), gpu()) << name;
  EXPECT_EQ(weight.device(), gpu());  // the same tensor, moved
  EXPECT_TRUE(weight.requires_grad());
  EXPECT_FALSE(weight.grad().defined());  // gradients are dropped
  EXPECT_TRUE(all_close(weight.to(Device::cpu()), before, 0, 0));

  const Tensor x = cpu_rand({4, 5}, DType::f32, 3);
  Tensor y = lin->forward(x.to(gpu()));
  sum(y).backward();
  EXPECT_EQ(weight.grad().device(), gpu());

  seq->to(Device::cpu());
  EXPECT_EQ(weight.device(), Device::cpu());
  EXPECT_TRUE(all_close(weight, before, 0, 0));
  EXPECT_TRUE(all_close(lin->forward(x), y.to(Device::cpu()), 1e-5, 1e-5));
}

VitConfig small_vit(DType dtype) {
  VitConfig c;
  c.image_size = 40, c.patch_size = 8, c.width = 64, c.depth = 3, c.heads = 4, c.mlp_dim = 160;
  c.act = models::Activation::quick_gelu;
  c.pre_norm = true;
  c.proj_dim = 24;
  c.dtype = dtype;
  return c;
}

// Every layer's tokens and the final embedding, CUDA against the CPU, for one model moved over.
void expect_vit_layers_match(DType dtype, double min_cosine, double atol, double rtol) {
  VisionTransformer vit(small_vit(dtype));
  randomize(vit, 11, 0.2);
  const Tensor images = cpu_rand({3, 3, 40, 40}, DType::f32, 5);
  NoGrad no_grad;
  const models::LayerOutputs on_cpu = vit.forward_layers(images, vit.all_layers());
  vit.to(gpu());
  const models::LayerOutputs on_gpu = vit.forward_layers(images.to(gpu()), vit.all_layers());
  ASSERT_EQ(on_cpu.size(), on_gpu.size());
  for (const auto& [layer, expected] : on_cpu) {
    SCOPED_TRACE("layer " + std::to_string(layer));
    const Tensor& got = on_gpu.at(layer);
    EXPECT_EQ(got.device(), gpu());
    ASSERT_EQ(got.shape(), expected.shape());
    EXPECT_GE(worst_row_cosine(got, expected), min_cosine);
    EXPECT_TRUE(all_close(got.to(Device::cpu()).to(DType::f32), expected.to(DType::f32), atol, rtol));
  }
}

TEST(GpuVit, EveryLayerMatchesTheCpuInF32) {
  SKIP_WITHOUT_CUDA();
  expect_vit_layers_match(DType::f32, 0.999999, 1e-4, 1e-3);
}

TEST(GpuVit, EveryLayerMatchesTheCpuInBf16) {
  SKIP_WITHOUT_CUDA();
  // Both sides round activations to bf16 between ops, in different places: compare directions.
  expect_vit_layers_match(DType::bf16, 0.999, 0.1, 0.1);
}

class GpuEegEncoder : public ::testing::TestWithParam<std::string> {};

// Forward in eval mode (no dropout; batch norm on running statistics) and the gradient of every
// parameter, CUDA against the CPU, for one encoder moved over.
TEST_P(GpuEegEncoder, ForwardAndParameterGradientsMatchTheCpu) {
  SKIP_WITHOUT_CUDA();
  auto enc = models::make_eeg_encoder(GetParam(), {17, 100});
  randomize(*enc, 21, 0.1);
  enc->eval();
  const Tensor x = cpu_rand({6, 17, 100}, DType::f32, 9);
  const Tensor y_cpu = enc->forward(x);
  const Tensor seed = cpu_rand(y_cpu.shape(), DType::f32, 10);
  y_cpu.backward(seed);
  std::map<std::string, Tensor> grads;
  for (auto& [name, p] : enc->named_parameters())
    if (p.grad().defined()) grads[name] = p.grad().clone();
  ASSERT_FALSE(grads.empty());

  enc->to(gpu());
  const Tensor y_gpu = enc->forward(x.to(gpu()));
  EXPECT_TRUE(all_close(y_gpu.to(Device::cpu()), y_cpu, 1e-4, 1e-3)) << "forward";
  y_gpu.backward(seed.to(gpu()));
  for (auto& [name, p] : enc->named_parameters()) {
    if (!grads.count(name)) continue;
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_TRUE(all_close(p.grad().to(Device::cpu()), grads[name], 1e-4, 1e-3)) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Encoders, GpuEegEncoder, ::testing::ValuesIn(models::eeg_encoder_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace shallow::testing
