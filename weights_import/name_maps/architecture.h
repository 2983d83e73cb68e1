#pragma once
// What a weights file's tensors say about the vision model they hold, and the mapping of its
// names onto the canonical names of docs/MODEL_NAMES.md.
//
// Detection reads names and shapes only. What tensors cannot say is left to the caller: the
// number of attention heads (a [D, D] projection looks the same for any split), the activation
// (OpenAI's CLIP weights want quick_gelu, OpenCLIP's own gelu), the LayerNorm epsilon and the
// input size of models that interpolate their position embedding.
#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "engine/tensor.h"

namespace shallow::name_maps {

using Tensors = std::map<std::string, Tensor>;

enum class Layout {
  openclip_vit,     // OpenAI CLIP / OpenCLIP VisionTransformer: visual.conv1, visual.transformer...
  hf_clip,          // HF transformers CLIPVisionModel(WithProjection) / CLIPModel: vision_model...
  timm_vit,         // timm VisionTransformer: patch_embed.proj, blocks.{i}.attn.qkv, ...
  hf_dinov2,        // HF transformers Dinov2Model / Dinov2WithRegistersModel
  dinov2,           // DINOv2's own checkpoints (torch hub): timm-like names, mask_token, register_tokens
  openclip_resnet,  // OpenAI CLIP / OpenCLIP ModifiedResNet: visual.layer1..4, visual.attnpool
};
const char* layout_name(Layout layout);

struct VitShape {
  int64_t width = 0, depth = 0, patch_size = 0;
  int64_t pos_grid = 0;  // side of the stored position grid
  int64_t mlp_dim = 0;
  int64_t proj_dim = 0;  // 0: no projection
  int64_t register_tokens = 0;
  bool class_token = true;
  bool pre_norm = false, layer_scale = false, patch_bias = false, qkv_bias = true;
  bool final_patch_mean = false;  // timm's global_pool="avg" with fc_norm
};

struct ResNetShape {
  std::array<int64_t, 4> layers{};  // Bottlenecks per stage
  int64_t width = 0;                // the stem's output channels
  int64_t output_dim = 0;           // the attention pool's output
  int64_t grid = 0;                 // the attention pool's position grid (input size / 32)
};

struct Architecture {
  Layout layout = Layout::openclip_vit;
  std::string prefix;  // what the model's names start with in the file ("visual.", "")
  VitShape vit;        // for every layout but openclip_resnet
  ResNetShape resnet;  // for openclip_resnet

  bool is_resnet() const { return layout == Layout::openclip_resnet; }
  std::string describe() const;  // "OpenCLIP ViT (prefix 'visual.'): width 768, 12 blocks, ..."
};

// Recognizes the layout from the names (any prefix, so checkpoints that wrap the state dict as
// {"state_dict": ...} or DDP's "module." work as is) and reads the shapes. Throws naming the
// layouts it knows and a few of the file's names when none matches.
Architecture detect_architecture(const Tensors& tensors);

// The model's tensors under canonical names, views of the file's tensors where possible (fused
// q/k/v projections split, OpenAI's [D, E] projection transposed, [1, 1, D] tokens flattened).
// Tensors outside the model (a text tower, a classifier head, logit_scale) are left out; a name
// inside it that nothing maps (a variant this project does not implement) throws naming it.
Tensors to_canonical(const Tensors& tensors, const Architecture& arch);

}  // namespace shallow::name_maps
