#pragma once
// HF transformers Dinov2Model and Dinov2WithRegistersModel -> canonical names (prefix "" for the
// bare model, "dinov2." inside the classification models).
//   embeddings.patch_embeddings.projection  -> patch_embed
//   embeddings.cls_token [1, 1, D]          -> cls_token [D]       (mask_token: skipped)
//   embeddings.register_tokens [1, R, D]    -> reg_tokens [R, D]
//   embeddings.position_embeddings [1, T, D] -> pos_embed [T, D]
//   encoder.layer.{i}.norm1, norm2, mlp.fc1, mlp.fc2      -> blocks.{i}.norm1, norm2, mlp.fc1, fc2
//   encoder.layer.{i}.attention.attention.query, key, value -> blocks.{i}.attn.q, k, v
//   encoder.layer.{i}.attention.output.dense              -> blocks.{i}.attn.out
//   encoder.layer.{i}.layer_scale1.lambda1, layer_scale2.lambda1 -> blocks.{i}.ls1, ls2
//   layernorm                               -> norm
#include "weights_import/name_maps/architecture.h"

namespace shallow::name_maps {

bool match_hf_dinov2(const Tensors& tensors, Architecture* arch);
Tensors hf_dinov2_to_canonical(const Tensors& tensors, const Architecture& arch);

}  // namespace shallow::name_maps
