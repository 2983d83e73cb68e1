#pragma once
// timm's VisionTransformer, and DINOv2's own checkpoints (which use the same names plus
// mask_token and register_tokens) -> canonical names.
//   patch_embed.proj.weight, .bias          -> patch_embed.weight, .bias
//   cls_token [1, 1, D]                     -> cls_token [D]
//   register_tokens [1, R, D] (DINOv2)      -> reg_tokens [R, D]   (mask_token: skipped)
//   pos_embed [1, T, D]                     -> pos_embed [T, D]
//   norm_pre                                -> norm_pre
//   blocks.{i}.norm1, norm2, mlp.fc1, mlp.fc2 -> the same
//   blocks.{i}.attn.qkv [3D, D]             -> blocks.{i}.attn.q, k, v (split)
//   blocks.{i}.attn.proj                    -> blocks.{i}.attn.out
//   blocks.{i}.ls1.gamma, ls2.gamma         -> blocks.{i}.ls1, ls2
//   norm, or fc_norm with global_pool="avg" -> norm
//   head (the classifier)                   -> skipped
#include "weights_import/name_maps/architecture.h"

namespace shallow::name_maps {

// DINOv2's checkpoints are told apart by their mask_token or register_tokens.
bool match_timm_vit(const Tensors& tensors, Architecture* arch);
Tensors timm_vit_to_canonical(const Tensors& tensors, const Architecture& arch);

}  // namespace shallow::name_maps
