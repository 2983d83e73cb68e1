#include "tests/weights_import/weights_test_util.h"
#include "weights_import/config.h"

namespace shallow::testing {
namespace {

TEST(VisionConfig, HfClipVisionModel) {
  const VisionConfig c = read_vision_config(weights_fixture("configs/hf_clip_vision/config.json"));
  EXPECT_EQ(c.source, "hf clip");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.num_layers, 3);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.image_size, 32);
  EXPECT_EQ(c.patch_size, 8);
  EXPECT_EQ(c.projection_dim, 48);
  EXPECT_EQ(c.hidden_act, "quick_gelu");
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
}

TEST(VisionConfig, HfClipModelTakesTheVisionTowerAndTopProjection) {
  const VisionConfig c = read_vision_config(weights_fixture("configs/hf_clip/config.json"));
  EXPECT_EQ(c.hidden_size, 1024);
  EXPECT_EQ(c.num_layers, 24);
  EXPECT_EQ(c.num_heads, 16);
  EXPECT_EQ(c.patch_size, 14);
  EXPECT_EQ(c.projection_dim, 768);
}

TEST(VisionConfig, HfDefaultsFillWhatTheFileOmits) {
  const VisionConfig c = parse_vision_config(R"({"model_type": "clip", "vision_config": {"patch_size": 16}})", "c.json");
  EXPECT_EQ(c.hidden_size, 768);
  EXPECT_EQ(c.num_layers, 12);
  EXPECT_EQ(c.patch_size, 16);
  EXPECT_EQ(c.projection_dim, 512);
  EXPECT_EQ(c.hidden_act, "quick_gelu");
}

TEST(VisionConfig, HfDinov2) {
  const VisionConfig c = read_vision_config(weights_fixture("configs/hf_dinov2/config.json"));
  EXPECT_EQ(c.source, "hf dinov2");
  EXPECT_EQ(c.hidden_size, 384);
  EXPECT_EQ(c.num_heads, 6);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.patch_size, 14);
  EXPECT_EQ(c.hidden_act, "gelu");
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.layerscale_value, 1.0);
  EXPECT_EQ(parse_vision_config(R"({"model_type": "dinov2_with_registers", "num_register_tokens": 4})", "r.json")
                .num_register_tokens,
            4);
}

TEST(VisionConfig, OpenClipModelConfigs) {
  const VisionConfig b32 = read_vision_config(weights_fixture("configs/open_clip/ViT-B-32.json"));
  EXPECT_EQ(b32.source, "open_clip");
  EXPECT_EQ(b32.hidden_size, 768);
  EXPECT_EQ(b32.num_layers, 12);
  EXPECT_EQ(b32.num_heads, 12);
  EXPECT_EQ(b32.patch_size, 32);
  EXPECT_EQ(b32.projection_dim, 512);
  EXPECT_EQ(b32.hidden_act, "gelu");
  EXPECT_EQ(read_vision_config(weights_fixture("configs/open_clip/ViT-B-16-quickgelu.json")).hidden_act, "quick_gelu");
  const VisionConfig rn50 = read_vision_config(weights_fixture("configs/open_clip/RN50.json"));
  EXPECT_EQ(rn50.resnet_layers, (std::vector<int64_t>{3, 4, 6, 3}));
  EXPECT_EQ(rn50.hidden_size, 64);
  EXPECT_EQ(rn50.num_heads, 32);
  EXPECT_EQ(rn50.projection_dim, 1024);
  const VisionConfig l14 = read_vision_config(weights_fixture("configs/open_clip/open_clip_config.json"));
  EXPECT_EQ(l14.hidden_size, 1024);
  EXPECT_EQ(l14.num_heads, 16);
  EXPECT_EQ(l14.patch_size, 14);
  ASSERT_EQ(l14.image_mean.size(), 3u);
  EXPECT_NEAR(l14.image_mean[0], 0.48145466, 1e-9);
}

TEST(VisionConfig, BadFilesAreNamed) {
  EXPECT_TRUE(throws_error([] { parse_vision_config("{", "a.json"); }, {"a.json", "not valid JSON"}));
  EXPECT_TRUE(throws_error([] { parse_vision_config("[]", "b.json"); }, {"b.json", "not a JSON object"}));
  EXPECT_TRUE(throws_error([] { parse_vision_config(R"({"model_type": "bert"})", "c.json"); },
                           {"c.json", "unsupported model_type 'bert'"}));
  EXPECT_TRUE(throws_error([] { parse_vision_config(R"({"model_type": "clip_vision_model", "hidden_size": -3})", "d.json"); },
                           {"d.json", "'hidden_size'", "positive integer"}));
  EXPECT_TRUE(throws_error([] { parse_vision_config(R"({"model_type": "clip_vision_model", "hidden_act": 3})", "e.json"); },
                           {"e.json", "'hidden_act'"}));
  EXPECT_TRUE(throws_error([] { parse_vision_config(R"({"vision_cfg": {"layers": [3, 4]}})", "f.json"); },
                           {"f.json", "2 stages"}));
  EXPECT_TRUE(throws_error([] { read_vision_config("/nonexistent/config.json"); }, {"/nonexistent/config.json"}));
}

}  // namespace
}  // namespace shallow::testing
