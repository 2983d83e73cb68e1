// The ViT against the reference libraries' own forward passes (tests/reference/models_fixtures.py):
// HF CLIPVisionModelWithProjection (quick_gelu), OpenCLIP's VisionTransformer (gelu), timm's
// VisionTransformer (class token, and global average pooling without one), HF Dinov2Model and
// Dinov2WithRegistersModel (position embeddings resized from a 7x7 to a 4x4 grid). Each loads
// the library's own saved file through weights_import and the name maps; every layer's tokens
// and the final embedding must match to 1e-4.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "models/vit.h"
#include "tests/support/fixtures.h"
#include "weights_import/name_maps/architecture.h"
#include "weights_import/safetensors.h"
#include "weights_import/torch_checkpoint.h"

using namespace shallow;
using namespace shallow::models;
using shallow::testing::all_close;
using shallow::testing::Fixture;
using shallow::testing::fixture_path;

namespace {

name_maps::Tensors read_weights(const std::string& relative) {
  const std::string path = fixture_path("models/" + relative);
  const bool st = path.size() > 12 && path.substr(path.size() - 12) == ".safetensors";
  return st ? read_safetensors(path).tensors : read_torch_checkpoint(path).tensors;
}

struct VitCase {
  std::string name;     // folder under tests/fixtures/models
  std::string weights;  // the library's file in it
  name_maps::Layout layout;
  Activation act;
  double ln_eps;
  PosInterpolation interpolation = PosInterpolation::none;
};

// What the tensors cannot say (heads, activation, epsilon, input size) comes from the case, as
// the reference script built it; the rest from the detected shapes.
VitConfig config_for(const name_maps::Architecture& arch, const VitCase& c) {
  const name_maps::VitShape& s = arch.vit;
  VitConfig cfg;
  cfg.image_size = 16;
  cfg.patch_size = s.patch_size;
  cfg.pos_grid = s.pos_grid;
  cfg.width = s.width;
  cfg.depth = s.depth;
  cfg.heads = 2;
  cfg.mlp_dim = s.mlp_dim;
  cfg.act = c.act;
  cfg.pre_norm = s.pre_norm;
  cfg.class_token = s.class_token;
  cfg.register_tokens = s.register_tokens;
  cfg.layer_scale = s.layer_scale;
  cfg.ln_eps = c.ln_eps;
  cfg.patch_bias = s.patch_bias;
  cfg.qkv_bias = s.qkv_bias;
  cfg.proj_dim = s.proj_dim;
  cfg.pos_interpolation = c.interpolation;
  cfg.final_pool = s.final_patch_mean ? FinalPool::patch_mean : FinalPool::class_token;
  return cfg;
}

std::shared_ptr<VisionTransformer> load_case(const VitCase& c, DType dtype = DType::f32) {
  const name_maps::Tensors file = read_weights(c.name + "/" + c.weights);
  const name_maps::Architecture arch = name_maps::detect_architecture(file);
  EXPECT_EQ(arch.layout, c.layout) << arch.describe();
  VitConfig cfg = config_for(arch, c);
  cfg.dtype = dtype;
  auto vit = std::make_shared<VisionTransformer>(cfg);
  const name_maps::Tensors canonical = name_maps::to_canonical(file, arch);
  vit->load_state_dict(nn::StateDict(canonical.begin(), canonical.end()), true);
  return vit;
}

Tensor expected_images(const Fixture& f) { return f.get("images").to(DType::f32); }

double max_abs(const Tensor& t) {
  const auto v = t.to_vector<double>();
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

const VitCase kCases[] = {
    {"hf_clip", "model.safetensors", name_maps::Layout::hf_clip, Activation::quick_gelu, 1e-5},
    {"openclip_vit", "open_clip_pytorch_model.bin", name_maps::Layout::openclip_vit,
     Activation::gelu, 1e-5},
    {"timm_vit", "model.pth", name_maps::Layout::timm_vit, Activation::gelu, 1e-6},
    {"timm_vit_avg", "model.safetensors", name_maps::Layout::timm_vit, Activation::gelu, 1e-6},
    {"hf_dinov2", "model.safetensors", name_maps::Layout::hf_dinov2, Activation::gelu, 1e-6,
     PosInterpolation::bicubic},
    {"hf_dinov2_registers", "model.safetensors", name_maps::Layout::hf_dinov2, Activation::gelu,
     1e-6, PosInterpolation::bicubic_antialias},
};

class VitReference : public ::testing::TestWithParam<VitCase> {};

TEST_P(VitReference, EveryLayerAndTheFinalEmbeddingMatchTheLibrary) {
  const VitCase& c = GetParam();
  auto vit = load_case(c);
  const Fixture f("models/" + c.name + "/expected");
  NoGrad no_grad;
  const LayerOutputs out = vit->forward_layers(expected_images(f), vit->all_layers());
  ASSERT_EQ(int64_t(out.size()), vit->config().depth + 2);
  for (int64_t l = 0; l <= vit->config().depth; ++l) {
    const Tensor want = f.get("layer_" + std::to_string(l));
    EXPECT_TRUE(all_close(out.at(l), want, 1e-4, 0)) << c.name << " layer " << l;
    // Each block must change the stream, or a skipped block would pass unnoticed.
    if (l > 0) EXPECT_GT(max_abs(want - f.get("layer_" + std::to_string(l - 1))), 0.1);
  }
  EXPECT_TRUE(all_close(out.at(kFinalLayer), f.get("final"), 1e-4, 0)) << c.name << " final";
}

INSTANTIATE_TEST_SUITE_P(Families, VitReference, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

TEST(Vit, DetectsEachLayoutsShape) {
  const auto clip = name_maps::detect_architecture(read_weights("hf_clip/model.safetensors"));
  EXPECT_EQ(clip.prefix, "vision_model.");
  EXPECT_EQ(clip.vit.width, 16);
  EXPECT_EQ(clip.vit.depth, 3);
  EXPECT_EQ(clip.vit.patch_size, 4);
  EXPECT_EQ(clip.vit.pos_grid, 4);
  EXPECT_EQ(clip.vit.mlp_dim, 40);
  EXPECT_EQ(clip.vit.proj_dim, 12);
  EXPECT_TRUE(clip.vit.pre_norm);
  EXPECT_FALSE(clip.vit.patch_bias);

  const auto oc = name_maps::detect_architecture(read_weights("openclip_vit/open_clip_pytorch_model.bin"));
  EXPECT_EQ(oc.prefix, "visual.");
  EXPECT_EQ(oc.vit.proj_dim, 12);

  const auto avg = name_maps::detect_architecture(read_weights("timm_vit_avg/model.safetensors"));
  EXPECT_FALSE(avg.vit.class_token);
  EXPECT_TRUE(avg.vit.final_patch_mean);

  const auto reg = name_maps::detect_architecture(read_weights("hf_dinov2_registers/model.safetensors"));
  EXPECT_EQ(reg.vit.register_tokens, 2);
  EXPECT_EQ(reg.vit.pos_grid, 7);
  EXPECT_TRUE(reg.vit.layer_scale);
  EXPECT_TRUE(reg.vit.patch_bias);
}

TEST(Vit, NameMapsSplitTransposeAndFlatten) {
  const name_maps::Tensors file = read_weights("openclip_vit/open_clip_pytorch_model.bin");
  const auto canonical = name_maps::to_canonical(file, name_maps::detect_architecture(file));
  // in_proj_weight [3D, D] -> q, k, v; rows D..2D are k.
  const Tensor in_proj = file.at("visual.transformer.resblocks.1.attn.in_proj_weight");
  EXPECT_TRUE(all_close(canonical.at("blocks.1.attn.k.weight"), in_proj.narrow(0, 16, 16), 0, 0));
  EXPECT_TRUE(all_close(canonical.at("blocks.1.attn.v.bias"),
                        file.at("visual.transformer.resblocks.1.attn.in_proj_bias").narrow(0, 32, 16), 0, 0));
  // OpenAI's proj [D, E] is the transpose of the canonical [E, D].
  EXPECT_TRUE(all_close(canonical.at("proj.weight"), file.at("visual.proj").t(), 0, 0));
  EXPECT_EQ(canonical.count("logit_scale"), 0u);  // outside the vision tower: left out

  const name_maps::Tensors timm = read_weights("timm_vit/model.pth");
  const auto tc = name_maps::to_canonical(timm, name_maps::detect_architecture(timm));
  EXPECT_EQ(tc.at("cls_token").shape(), (Shape{16}));
  EXPECT_EQ(tc.at("pos_embed").shape(), (Shape{17, 16}));
  EXPECT_EQ(tc.count("head.weight"), 0u);  // the classifier is not part of the backbone
}

TEST(Vit, UnknownAndUnsupportedLayoutsAreClearErrors) {
  name_maps::Tensors junk{{"encoder.weight", Tensor::zeros({2, 2})}};
  try {
    name_maps::detect_architecture(junk);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown weights layout"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("encoder.weight"), std::string::npos) << e.what();
  }
  // A variant with tensors the model has no place for (timm's q/k norms) is named, not dropped.
  name_maps::Tensors file = read_weights("timm_vit/model.pth");
  file["blocks.0.attn.q_norm.weight"] = Tensor::ones({8});
  try {
    name_maps::to_canonical(file, name_maps::detect_architecture(file));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.0.attn.q_norm.weight"), std::string::npos) << e.what();
  }
}

TEST(Vit, StopsAfterTheDeepestRequestedLayer) {
  auto vit = load_case(kCases[0]);
  const Fixture f("models/hf_clip/expected");
  const Tensor images = expected_images(f);
  NoGrad no_grad;
  // Allocations grow with every block run: asking for layer 1 runs one block, layer 2 two.
  std::vector<int64_t> allocations;
  for (int64_t layer : {int64_t(0), int64_t(1), int64_t(2), int64_t(3)}) {
    const int64_t before = memory_stats().allocations;
    const LayerOutputs out = vit->forward_layers(images, {layer});
    allocations.push_back(memory_stats().allocations - before);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(all_close(out.at(layer), f.get("layer_" + std::to_string(layer)), 1e-4, 0));
  }
  for (size_t i = 1; i < allocations.size(); ++i)
    EXPECT_GT(allocations[i], allocations[i - 1]) << "layer " << i;
  EXPECT_EQ(allocations[2] - allocations[1], allocations[3] - allocations[2]);  // one block each

  // A poisoned block past the requested layer changes nothing.
  for (auto& [name, p] : vit->named_parameters())
    if (name.rfind("blocks.2.", 0) == 0) p.fill_(std::numeric_limits<double>::quiet_NaN());
  const LayerOutputs early = vit->forward_layers(images, {0, 2});
  EXPECT_TRUE(all_close(early.at(2), f.get("layer_2"), 1e-4, 0));
  const Tensor poisoned = vit->forward_layers(images, {3}).at(3);
  EXPECT_TRUE(std::isnan(poisoned.to_vector<float>()[0]));
}

TEST(Vit, PeakMemoryDoesNotGrowWithDepth) {
  // Under NoGrad each block's input is released once used: running 8 blocks needs no more
  // memory than running 1, beyond the tokens handed out.
  VitConfig c;
  c.image_size = 64, c.patch_size = 8, c.width = 64, c.depth = 8, c.heads = 4, c.mlp_dim = 256;
  VisionTransformer vit(c);
  const Tensor images = Tensor::zeros({4, 3, 64, 64});
  NoGrad no_grad;
  auto peak_for = [&](int64_t layer) {
    vit.forward_layers(images, {layer});  // warm up, then measure
    reset_peak_memory();
    const int64_t base = memory_stats().current_bytes;
    vit.forward_layers(images, {layer}, [](int64_t, const Tensor&) {});
    return memory_stats().peak_bytes - base;
  };
  const int64_t one = peak_for(1), eight = peak_for(8);
  const int64_t tokens_bytes = 4 * c.tokens() * c.width * 4;
  EXPECT_LE(eight, one + tokens_bytes) << "1 block: " << one << " bytes, 8 blocks: " << eight;
}

TEST(Vit, SameResultForNonContiguousImagesAndLayerSubsets) {
  auto vit = load_case(kCases[2]);
  const Fixture f("models/timm_vit/expected");
  const Tensor images = expected_images(f);
  // The same pixels inside a wider buffer: a strided view.
  Tensor wide = Tensor::zeros({2, 3, 16, 21});
  wide.slice(3, 2, 18).copy_(images);
  const Tensor view = wide.slice(3, 2, 18);
  ASSERT_FALSE(view.is_contiguous());
  NoGrad no_grad;
  const LayerOutputs out = vit->forward_layers(view, {2, kFinalLayer, 1});
  EXPECT_EQ(out.size(), 3u);
  EXPECT_TRUE(all_close(out.at(1), f.get("layer_1"), 1e-4, 0));
  EXPECT_TRUE(all_close(out.at(2), f.get("layer_2"), 1e-4, 0));
  EXPECT_TRUE(all_close(out.at(kFinalLayer), f.get("final"), 1e-4, 0));
  // The sink sees the layers in order of depth, final last.
  std::vector<int64_t> order;
  vit->forward_layers(images, {kFinalLayer, 3, 0}, [&](int64_t l, const Tensor&) { order.push_back(l); });
  EXPECT_EQ(order, (std::vector<int64_t>{0, 3, kFinalLayer}));
}

TEST(Vit, Bf16ParametersStayCloseToF32) {
  auto vit = load_case(kCases[0], DType::bf16);
  const Fixture f("models/hf_clip/expected");
  NoGrad no_grad;
  const Tensor got = vit->forward(expected_images(f)).to(DType::f32);
  const Tensor want = f.get("final");
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i], na += a[i] * a[i], nb += b[i] * b[i];
  EXPECT_GT(dot / std::sqrt(na * nb), 0.99);
}

TEST(Vit, BadInputsAreClearErrors) {
  auto vit = load_case(kCases[0]);
  NoGrad no_grad;
  const Tensor images = Tensor::zeros({1, 3, 16, 16});
  try {
    vit->forward_layers(images, {4});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers 0..3 and final"), std::string::npos) << e.what();
  }
  EXPECT_THROW(vit->forward_layers(images, {-3}), Error);
  EXPECT_THROW(vit->forward(Tensor::zeros({1, 1, 16, 16})), Error);  // not 3 channels
  EXPECT_THROW(vit->forward(Tensor::zeros({3, 16, 16})), Error);     // no batch dim
  try {
    vit->forward(Tensor::zeros({1, 3, 32, 32}));  // CLIP does not resize its positions
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("8 x 8"), std::string::npos) << e.what();
  }
  VitConfig bad;
  bad.width = 30, bad.heads = 4;
  EXPECT_THROW(VisionTransformer{bad}, Error);
}

// The three F.interpolate calls the DINOv2 implementations make, against PyTorch itself.
TEST(Vit, PositionGridResizingMatchesTorchInterpolate) {
  const Fixture f("models/interpolate");
  const Tensor grid = f.get("grid");
  const std::pair<int64_t, int64_t> sizes[] = {{4, 4}, {10, 10}, {5, 9}, {7, 7}, {16, 16}};
  for (auto [oh, ow] : sizes) {
    const std::string s = std::to_string(oh) + "x" + std::to_string(ow);
    EXPECT_TRUE(all_close(resize_position_grid(grid, oh, ow, PosInterpolation::bicubic),
                          f.get("bicubic_" + s), 1e-5, 0)) << s;
    EXPECT_TRUE(all_close(resize_position_grid(grid, oh, ow, PosInterpolation::bicubic_antialias),
                          f.get("antialias_" + s), 1e-5, 0)) << s;
    EXPECT_TRUE(all_close(resize_position_grid(grid, oh, ow, PosInterpolation::bicubic_scale_offset),
                          f.get("scale_offset_" + s), 1e-5, 0)) << s;
  }
  // The three differ where it matters: shrinking.
  EXPECT_FALSE(all_close(f.get("bicubic_4x4"), f.get("antialias_4x4"), 1e-3, 0));
  EXPECT_FALSE(all_close(f.get("bicubic_4x4"), f.get("scale_offset_4x4"), 1e-3, 0));
  EXPECT_THROW(resize_position_grid(grid, 4, 4, PosInterpolation::none), Error);
}

TEST(Pooling, TokensAndFeatureMaps) {
  // [1, 4, 2]: class token, one register, two patches.
  const Tensor tokens = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8}, {1, 4, 2});
  EXPECT_EQ(pool_tokens(tokens, Pooling::cls, 2).to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_EQ(pool_tokens(tokens, Pooling::mean, 2).to_vector<float>(), (std::vector<float>{6, 7}));
  EXPECT_EQ(pool_tokens(tokens, Pooling::all, 2).to_vector<float>(), (std::vector<float>{4, 5}));
  EXPECT_EQ(pool_tokens(tokens, Pooling::none, 2).shape(), (Shape{1, 4, 2}));
  EXPECT_THROW(pool_tokens(tokens, Pooling::cls, 0, false), Error);
  EXPECT_THROW(pool_tokens(Tensor::zeros({4, 2}), Pooling::mean, 1), Error);

  const Tensor map = Tensor::from_vector<float>({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2});
  EXPECT_EQ(pool_feature_map(map, Pooling::mean).to_vector<float>(), (std::vector<float>{2.5, 25}));
  EXPECT_EQ(pool_feature_map(map, Pooling::none).shape(), (Shape{1, 2, 2, 2}));
  EXPECT_THROW(pool_feature_map(map, Pooling::cls), Error);

  EXPECT_EQ(parse_pooling("mean"), Pooling::mean);
  EXPECT_THROW(parse_pooling("max"), Error);
  EXPECT_EQ(layer_name(kFinalLayer), "final");
  EXPECT_EQ(layer_name(7), "7");
}

}  // namespace
