// The CLIP ResNet with bf16 parameters through the Backbone API, against the f32 run of the same
// weights (OpenCLIP's checkpoint of tests/fixtures/models/openclip_resnet). Convolutions and
// batch norms compute in f32 from bf16 inputs and round their outputs to bf16; the attention
// pool's projections run on the bf16 GEMM. Per image, the cosine between the two runs' feature
// maps (every value) and pooled features must exceed 0.999.
#include <cmath>

#include <gtest/gtest.h>

#include "models/backbone.h"
#include "models/clip_resnet.h"
#include "tests/support/fixtures.h"
#include "weights_import/name_maps/architecture.h"
#include "weights_import/torch_checkpoint.h"

using namespace shallow;
using namespace shallow::models;
using shallow::testing::Fixture;
using shallow::testing::fixture_path;

namespace {

std::shared_ptr<ClipResNet> load_resnet(DType dtype) {
  const auto file = read_torch_checkpoint(fixture_path("models/openclip_resnet/epoch_7.pt")).tensors;
  const auto arch = name_maps::detect_architecture(file);
  ClipResNetConfig c;
  c.layers = arch.resnet.layers;
  c.width = arch.resnet.width;
  c.output_dim = arch.resnet.output_dim;
  c.image_size = arch.resnet.grid * 32;
  c.heads = 2;
  c.dtype = dtype;
  auto net = std::make_shared<ClipResNet>(c);
  const auto canonical = name_maps::to_canonical(file, arch);
  net->load_state_dict(nn::StateDict(canonical.begin(), canonical.end()), true);
  return net;
}

double min_row_cosine(const Tensor& a_in, const Tensor& b_in) {
  const int64_t n = a_in.size(0);
  const auto a = a_in.to_vector<double>(), b = b_in.to_vector<double>();
  const size_t d = a.size() / size_t(n);
  double worst = 1;
  for (size_t i = 0; i < size_t(n); ++i) {
    double dot = 0, na = 0, nb = 0;
    for (size_t j = i * d; j < (i + 1) * d; ++j) dot += a[j] * b[j], na += a[j] * a[j], nb += b[j] * b[j];
    worst = std::min(worst, dot / std::sqrt(na * nb));
  }
  return worst;
}

}  // namespace

TEST(ClipResNetBf16, BackboneExtractCloseToF32) {
  auto want_backbone = make_backbone(load_resnet(DType::f32));
  auto bf16_net = load_resnet(DType::bf16);
  EXPECT_EQ(bf16_net->attnpool->q_proj->weight.dtype(), DType::bf16);
  auto got_backbone = make_backbone(bf16_net);
  const Tensor images = Fixture("models/openclip_resnet/expected").get("images").to(DType::f32);
  const std::vector<int64_t> layers = {1, 2, 3, 4, kFinalLayer};
  double worst = 1;
  for (Pooling pooling : {Pooling::mean, Pooling::none}) {
    const LayerOutputs want = want_backbone->extract(images, layers, pooling);
    const LayerOutputs got = got_backbone->extract(images, layers, pooling);
    for (const auto& [layer, features] : got) {
      EXPECT_EQ(features.dtype(), DType::f32);
      ASSERT_EQ(features.shape(), want.at(layer).shape());
      const double c = min_row_cosine(features, want.at(layer));
      EXPECT_GT(c, 0.999) << "layer " << layer_name(layer) << " pooled " << pooling_name(pooling);
      worst = std::min(worst, c);
    }
  }
  std::printf("  lowest cosine against the f32 run: %.6f\n", worst);
}
