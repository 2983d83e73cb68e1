#pragma once
// The configuration files published beside vision weights, reduced to the fields that fix
// the architecture: HF transformers' config.json (CLIPVisionModel, CLIPModel, Dinov2Model) and
// OpenCLIP's model config (open_clip_config.json, or a model definition like ViT-B-32.json).
// Fields a file leaves out take the defaults of the library that wrote it (HF writes only the
// values that differ from its defaults).
#include <cstdint>
#include <string>
#include <vector>

namespace shallow {

struct VisionConfig {
  std::string source;          // "hf clip", "hf dinov2" or "open_clip"
  int64_t hidden_size = 0;     // transformer width
  int64_t num_layers = 0;      // transformer blocks
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t patch_size = 0;
  int64_t image_size = 0;
  int64_t projection_dim = 0;  // the image embedding's size; 0 when the model has no projection
  int64_t num_register_tokens = 0;
  std::vector<int64_t> resnet_layers;  // OpenCLIP ModifiedResNet: blocks per stage (else empty)
  std::string hidden_act;      // "gelu", "quick_gelu", ...
  double layer_norm_eps = 0;
  double layerscale_value = 0;  // DINOv2's layer scale initial value (0: none)
  std::vector<double> image_mean, image_std;  // OpenCLIP's preprocess_cfg, when given
};

VisionConfig read_vision_config(const std::string& path);
VisionConfig parse_vision_config(const std::string& json_text, const std::string& name);

}  // namespace shallow
