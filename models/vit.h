#pragma once
// One configurable Vision Transformer for every family the project reads: OpenAI CLIP and
// OpenCLIP, HF transformers' CLIPVisionModel, timm's VisionTransformer and DINOv2 (with or
// without registers). Parameters carry the canonical names of docs/MODEL_NAMES.md; the files'
// own layouts are mapped onto them by weights_import/name_maps.
//
// The forward pass, for images [N, 3, H, W]:
//   patches  = patch_embed(images)                      [N, grid², D] (a strided convolution)
//   x        = [cls_token, patches] + pos_embed         (pos_embed resized when the grid differs)
//   x        = [x_cls, reg_tokens, x_patches]           (DINOv2 registers: no position embedding)
//   x        = norm_pre(x)                              (CLIP's ln_pre)            -> layer 0
//   x        = x + ls1 * attn(norm1(x));  x = x + ls2 * mlp(norm2(x))  per block   -> layer l
//   final    = proj(norm(x)[:, 0])                      (no proj: DINOv2, timm)
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/container.h"
#include "engine/nn/conv.h"
#include "engine/nn/layer_norm.h"
#include "engine/nn/linear.h"
#include "engine/nn/module.h"
#include "models/pooling.h"

namespace shallow::models {

enum class Activation {
  gelu,        // the erf form: OpenCLIP, timm, DINOv2
  quick_gelu,  // x * sigmoid(1.702 x): OpenAI's CLIP weights (and HF's CLIP configs)
};
const char* activation_name(Activation act);
Activation parse_activation(const std::string& name);  // "gelu" or "quick_gelu"

// How the stored position embedding meets an input whose patch grid differs from the stored
// one. The three resizings are F.interpolate(mode="bicubic", align_corners=False) called as each
// DINOv2 implementation calls it; they give different numbers, so each is reproduced exactly.
enum class PosInterpolation {
  none,                    // the grids must be equal (CLIP, OpenCLIP, timm)
  bicubic,                 // size=grid: HF Dinov2Model
  bicubic_antialias,       // size=grid, antialias=True: HF Dinov2WithRegistersModel
  bicubic_scale_offset,    // scale_factor=(grid + 0.1) / stored grid: DINOv2's own code
};
const char* pos_interpolation_name(PosInterpolation p);

// What the final embedding is made of.
enum class FinalPool {
  class_token,  // norm, then the class token (CLIP, DINOv2, timm's default)
  patch_mean,   // the mean of the patch tokens, then norm (timm's global_pool="avg" + fc_norm)
};

struct VitConfig {
  int64_t image_size = 224;  // the input side the model runs at
  int64_t patch_size = 16;
  int64_t pos_grid = 0;      // side of the stored position grid; 0: image_size / patch_size
  int64_t width = 768;
  int64_t depth = 12;
  int64_t heads = 12;
  int64_t mlp_dim = 3072;
  Activation act = Activation::gelu;
  bool pre_norm = false;      // CLIP's ln_pre on the embedded tokens
  bool class_token = true;
  int64_t register_tokens = 0;
  bool layer_scale = false;   // DINOv2's per-channel ls1, ls2
  double ln_eps = 1e-5;       // CLIP 1e-5; timm and DINOv2 1e-6
  bool patch_bias = false;    // CLIP's patch convolution has no bias
  bool qkv_bias = true;
  int64_t proj_dim = 0;       // the CLIP projection's output size; 0: no projection
  PosInterpolation pos_interpolation = PosInterpolation::none;
  FinalPool final_pool = FinalPool::class_token;
  DType dtype = DType::f32;   // of the parameters (bf16 and f16 compute in f32)

  int64_t grid() const { return image_size / patch_size; }
  int64_t stored_grid() const { return pos_grid > 0 ? pos_grid : grid(); }
  int64_t prefix_tokens() const { return (class_token ? 1 : 0) + register_tokens; }
  int64_t tokens() const { return prefix_tokens() + grid() * grid(); }
  int64_t embed_dim() const { return proj_dim > 0 ? proj_dim : width; }
  // Throws naming the first inconsistent field (width not divisible by heads, ...).
  void validate() const;
  std::string describe() const;  // "ViT-B/16-like: width 768, 12 blocks, 12 heads, ..."

  // The published shapes. CLIP's (OpenAI, OpenCLIP, HF) and DINOv2's; activations and the
  // position interpolation as each family ships them.
  static VitConfig clip_b32();
  static VitConfig clip_b16();
  static VitConfig clip_l14();
  static VitConfig clip_h14();   // OpenCLIP ViT-H-14
  static VitConfig clip_bigg14();
  static VitConfig dinov2_s14(int64_t registers = 0);
  static VitConfig dinov2_b14(int64_t registers = 0);
  static VitConfig dinov2_l14(int64_t registers = 0);
};

// ---- The parts (children of VisionTransformer, named as in MODEL_NAMES.md).

class VitAttention : public nn::Module {
 public:
  VitAttention(int64_t width, int64_t heads, bool qkv_bias, DType dtype);
  Tensor forward(const Tensor& x) override;  // [N, T, D] -> [N, T, D]

  std::shared_ptr<nn::Linear> q, k, v, out;

 private:
  int64_t heads_;
};

class VitMlp : public nn::Module {
 public:
  VitMlp(int64_t width, int64_t hidden, Activation act, DType dtype);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Linear> fc1, fc2;

 private:
  Activation act_;
};

class VitBlock : public nn::Module {
 public:
  explicit VitBlock(const VitConfig& config);
  Tensor forward(const Tensor& x) override { return run(x); }
  // Takes the input by value: a caller that moves its tensor in lets it go as soon as the
  // attention branch has been added, before the MLP runs.
  Tensor run(Tensor x);

  std::shared_ptr<nn::LayerNorm> norm1, norm2;
  std::shared_ptr<VitAttention> attn;
  std::shared_ptr<VitMlp> mlp;
  Tensor ls1, ls2;  // [D], undefined without layer scale
};

// ---- The model.

class VisionTransformer : public nn::Module {
 public:
  explicit VisionTransformer(const VitConfig& config);
  const VitConfig& config() const { return config_; }

  // The requested layers (0..depth, and kFinalLayer) of images [N, 3, H, W], handed to `sink`
  // in order of depth as soon as each is computed: tokens [N, T, D] for numbered layers, the
  // embedding [N, embed_dim] for kFinalLayer (handed last). The pass stops after the deepest
  // layer asked for; under NoGrad, each block's input is released once the block has used it.
  // H and W must be multiples of the patch; unless the position embedding interpolates, the
  // grid must be the stored one. Layers out of range throw naming the valid range.
  void forward_layers(const Tensor& images, const std::vector<int64_t>& layers,
                      const LayerSink& sink);
  // The same, collected: layer -> tensor.
  LayerOutputs forward_layers(const Tensor& images, const std::vector<int64_t>& layers);
  // The final embedding [N, embed_dim].
  Tensor forward(const Tensor& images) override;

  // Every valid layer in order: 0, 1, ..., depth, then kFinalLayer.
  std::vector<int64_t> all_layers() const;

  // The embedded tokens before any block (layer 0), and the final embedding from the output of
  // the last block: the two ends of the pass, public for tests and callers that run blocks
  // themselves.
  Tensor embed(const Tensor& images);
  Tensor final_embedding(const Tensor& last_tokens);
  // The position embedding for a grid of gh x gw patches: [1 + gh * gw, D] (class position
  // first), resized from the stored grid by the configured interpolation.
  Tensor position_embedding(int64_t gh, int64_t gw) const;

  std::shared_ptr<nn::Conv2d> patch_embed;
  std::shared_ptr<nn::LayerNorm> norm_pre;  // null without pre-norm
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> proj;  // null without projection
  Tensor cls_token;   // [D]
  Tensor reg_tokens;  // [R, D]
  Tensor pos_embed;   // [1 + stored_grid², D] (without a class token: [stored_grid², D])

 private:
  VitBlock& block(int64_t i) const;
  VitConfig config_;
};

// Resizes a grid of vectors [gh, gw, D] to [oh, ow, D] as torch.nn.functional.interpolate
// (mode "bicubic", align_corners=False) does with the given call: `how` picks size, antialias or
// DINOv2's scale factor. Computed in f32 whatever the input's dtype; returns f32.
Tensor resize_position_grid(const Tensor& grid, int64_t oh, int64_t ow, PosInterpolation how);

}  // namespace shallow::models
