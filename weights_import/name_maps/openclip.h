#pragma once
// OpenAI CLIP and OpenCLIP VisionTransformer -> canonical names.
//   visual.conv1.weight                     -> patch_embed.weight
//   visual.class_embedding [D]              -> cls_token
//   visual.positional_embedding [T, D]      -> pos_embed
//   visual.ln_pre / ln_post                 -> norm_pre / norm
//   visual.transformer.resblocks.{i}.ln_1, ln_2            -> blocks.{i}.norm1, norm2
//   ....attn.in_proj_weight [3D, D], in_proj_bias [3D]     -> blocks.{i}.attn.q, k, v (split)
//   ....attn.out_proj                                      -> blocks.{i}.attn.out
//   ....ls_1.gamma, ls_2.gamma                             -> blocks.{i}.ls1, ls2
//   ....mlp.c_fc, mlp.c_proj                               -> blocks.{i}.mlp.fc1, fc2
//   visual.proj [D, E]                      -> proj.weight [E, D] (transposed)
#include "weights_import/name_maps/architecture.h"

namespace shallow::name_maps {

bool match_openclip_vit(const Tensors& tensors, Architecture* arch);
Tensors openclip_vit_to_canonical(const Tensors& tensors, const Architecture& arch);

}  // namespace shallow::name_maps
