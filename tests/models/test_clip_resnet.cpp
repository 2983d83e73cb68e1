// CLIP's ModifiedResNet against OpenCLIP's own forward (tests/reference/models_fixtures.py): a
// small random model (stages of 1, 2, 1, 1 Bottlenecks, width 2, two attention-pool heads) saved
// as an OpenCLIP training checkpoint ({"epoch", "state_dict"} with DDP's "module." prefix, half
// precision), loaded through weights_import and the name maps. Every stage's output and the
// attention pool's output must match to 1e-4.
#include <gtest/gtest.h>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/ops/reduce.h"
#include "models/backbone.h"
#include "models/clip_resnet.h"
#include "tests/support/fixtures.h"
#include "weights_import/name_maps/architecture.h"
#include "weights_import/torch_checkpoint.h"

using namespace shallow;
using namespace shallow::models;
using shallow::testing::all_close;
using shallow::testing::Fixture;
using shallow::testing::fixture_path;

namespace {

std::shared_ptr<ClipResNet> load_reference_resnet(name_maps::Architecture* arch_out = nullptr) {
  const auto file = read_torch_checkpoint(fixture_path("models/openclip_resnet/epoch_7.pt")).tensors;
  const auto arch = name_maps::detect_architecture(file);
  if (arch_out) *arch_out = arch;
  ClipResNetConfig c;
  c.layers = arch.resnet.layers;
  c.width = arch.resnet.width;
  c.output_dim = arch.resnet.output_dim;
  c.image_size = arch.resnet.grid * 32;
  c.heads = 2;  // head_width 32 over 64 channels, as the reference was built
  auto net = std::make_shared<ClipResNet>(c);
  const auto canonical = name_maps::to_canonical(file, arch);
  net->load_state_dict(nn::StateDict(canonical.begin(), canonical.end()), true);
  return net;
}

TEST(ClipResNet, DetectsTheCheckpointsShape) {
  name_maps::Architecture arch;
  load_reference_resnet(&arch);
  EXPECT_EQ(arch.layout, name_maps::Layout::openclip_resnet);
  EXPECT_EQ(arch.prefix, "state_dict.module.visual.");
  EXPECT_EQ(arch.resnet.layers, (std::array<int64_t, 4>{1, 2, 1, 1}));
  EXPECT_EQ(arch.resnet.width, 2);
  EXPECT_EQ(arch.resnet.output_dim, 24);
  EXPECT_EQ(arch.resnet.grid, 2);
}

TEST(ClipResNet, StagesAndAttentionPoolMatchOpenClip) {
  auto net = load_reference_resnet();
  const Fixture f("models/openclip_resnet/expected");
  NoGrad no_grad;
  const LayerOutputs out = net->forward_layers(f.get("images").to(DType::f32), net->all_layers());
  ASSERT_EQ(out.size(), 5u);
  for (int64_t l = 1; l <= 4; ++l)
    EXPECT_TRUE(all_close(out.at(l), f.get("layer_" + std::to_string(l)), 1e-4, 0)) << "layer " << l;
  EXPECT_TRUE(all_close(out.at(kFinalLayer), f.get("final"), 1e-4, 0));
  EXPECT_EQ(out.at(2).shape(), (Shape{2, 16, 8, 8}));
}

TEST(ClipResNet, StopsAfterTheDeepestRequestedStage) {
  auto net = load_reference_resnet();
  const Fixture f("models/openclip_resnet/expected");
  const Tensor images = f.get("images").to(DType::f32);
  NoGrad no_grad;
  int64_t previous = 0;
  for (int64_t layer = 1; layer <= 4; ++layer) {
    const int64_t before = memory_stats().allocations;
    const LayerOutputs out = net->forward_layers(images, {layer});
    const int64_t used = memory_stats().allocations - before;
    EXPECT_GT(used, previous) << "stage " << layer;
    previous = used;
    EXPECT_TRUE(all_close(out.at(layer), f.get("layer_" + std::to_string(layer)), 1e-4, 0));
  }
}

TEST(ClipResNet, BackbonePoolsStagesBySpatialMean) {
  auto net = load_reference_resnet();
  auto backbone = make_backbone(net);
  const Fixture f("models/openclip_resnet/expected");
  const Tensor images = f.get("images").to(DType::f32);
  const LayerOutputs pooled = backbone->extract(images, {3, kFinalLayer}, Pooling::mean);
  NoGrad no_grad;
  EXPECT_TRUE(all_close(pooled.at(3), mean(f.get("layer_3"), {2, 3}), 1e-4, 0));
  EXPECT_TRUE(all_close(pooled.at(kFinalLayer), f.get("final"), 1e-4, 0));
  EXPECT_EQ(backbone->preprocess().crop_size, 64);
  EXPECT_EQ(backbone->preprocess().mean, kClipMean);
  EXPECT_THROW(backbone->extract(images, {3}, Pooling::cls), Error);
  EXPECT_THROW(backbone->extract(images, {0}, Pooling::mean), Error);  // stages are 1..4
  EXPECT_EQ(parse_layers({"all"}, *backbone), (std::vector<int64_t>{1, 2, 3, 4, kFinalLayer}));
}

TEST(ClipResNet, BadInputsAreClearErrors) {
  auto net = load_reference_resnet();
  NoGrad no_grad;
  try {
    net->forward(Tensor::zeros({1, 3, 96, 96}));  // a 3x3 map for a 2x2 position embedding
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AttentionPool2d"), std::string::npos) << e.what();
  }
  try {
    net->forward_layers(Tensor::zeros({1, 3, 64, 64}), {5});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers 1..4"), std::string::npos) << e.what();
  }
  ClipResNetConfig bad = ClipResNetConfig::rn50();
  bad.heads = 7;
  EXPECT_THROW(ClipResNet{bad}, Error);
}

TEST(ClipResNet, PresetsHaveThePublishedNames) {
  // RN50's canonical names are OpenCLIP's: a few spot checks of the structure.
  ClipResNetConfig c = ClipResNetConfig::rn50();
  c.layers = {1, 1, 1, 1};  // the same names per block, at a fraction of the size
  c.width = 8, c.heads = 4;
  ClipResNet net(c);
  const nn::StateDict sd = net.state_dict();
  for (const char* name : {"conv1.weight", "bn3.running_var", "layer1.0.downsample.0.weight",
                           "layer2.0.downsample.1.num_batches_tracked", "layer4.0.conv3.weight",
                           "attnpool.positional_embedding", "attnpool.c_proj.bias"})
    EXPECT_EQ(sd.count(name), 1u) << name;
  EXPECT_EQ(sd.at("attnpool.positional_embedding").shape(), (Shape{50, 256}));  // 7x7 + 1 at 224
  EXPECT_EQ(sd.at("attnpool.c_proj.weight").shape(), (Shape{1024, 256}));
  EXPECT_EQ(sd.at("layer3.0.conv3.weight").shape(), (Shape{128, 32, 1, 1}));
}

}  // namespace
