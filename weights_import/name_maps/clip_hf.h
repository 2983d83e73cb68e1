#pragma once
// HF transformers CLIP vision tower -> canonical names (the tower's prefix is usually
// "vision_model."; the projection sits beside it as "visual_projection.weight").
//   embeddings.patch_embedding.weight       -> patch_embed.weight
//   embeddings.class_embedding [D]          -> cls_token
//   embeddings.position_embedding.weight    -> pos_embed        (position_ids: skipped)
//   pre_layrnorm / post_layernorm           -> norm_pre / norm
//   encoder.layers.{i}.layer_norm1, layer_norm2           -> blocks.{i}.norm1, norm2
//   encoder.layers.{i}.self_attn.q_proj, k_proj, v_proj   -> blocks.{i}.attn.q, k, v
//   encoder.layers.{i}.self_attn.out_proj                 -> blocks.{i}.attn.out
//   encoder.layers.{i}.mlp.fc1, fc2                       -> blocks.{i}.mlp.fc1, fc2
//   visual_projection.weight [E, D]         -> proj.weight
#include "weights_import/name_maps/architecture.h"

namespace shallow::name_maps {

bool match_hf_clip(const Tensors& tensors, Architecture* arch);
Tensors hf_clip_to_canonical(const Tensors& tensors, const Architecture& arch);

}  // namespace shallow::name_maps
