#include "weights_import/name_maps/clip_hf.h"

#include "weights_import/name_maps/rename.h"

namespace shallow::name_maps {

namespace {

const std::string kLayers = "encoder.layers.";

// The projection lives beside the tower: "vision_model." -> "visual_projection.weight".
std::string projection_name(const std::string& tower_prefix) {
  std::string parent = tower_prefix;
  const std::string tower = "vision_model.";
  if (parent.size() >= tower.size() &&
      parent.compare(parent.size() - tower.size(), tower.size(), tower) == 0)
    parent.resize(parent.size() - tower.size());
  return parent + "visual_projection.weight";
}

}  // namespace

bool match_hf_clip(const Tensors& tensors, Architecture* arch) {
  const auto prefix = find_prefix(tensors, "embeddings.class_embedding",
                                  {"embeddings.patch_embedding.weight", "post_layernorm.weight"});
  if (!prefix) return false;
  const std::string& p = *prefix;
  const Layout L = Layout::hf_clip;
  const Tensor& conv = require(tensors, p + "embeddings.patch_embedding.weight", L);
  const Tensor& pos = require(tensors, p + "embeddings.position_embedding.weight", L);
  VitShape s;
  s.width = conv.size(0);
  s.patch_size = conv.size(2);
  s.pos_grid = square_side(pos.size(0) - 1, p + "embeddings.position_embedding.weight");
  s.depth = count_numbered(tensors, p + kLayers, ".layer_norm1.weight");
  s.mlp_dim = require(tensors, p + kLayers + "0.mlp.fc1.weight", L).size(0);
  const std::string proj = projection_name(p);
  if (tensors.count(proj)) s.proj_dim = tensors.at(proj).size(0);
  s.pre_norm = tensors.count(p + "pre_layrnorm.weight") > 0;
  s.patch_bias = tensors.count(p + "embeddings.patch_embedding.bias") > 0;
  s.qkv_bias = tensors.count(p + kLayers + "0.self_attn.q_proj.bias") > 0;
  arch->layout = L;
  arch->prefix = p;
  arch->vit = s;
  return true;
}

Tensors hf_clip_to_canonical(const Tensors& tensors, const Architecture& arch) {
  Renamer r(tensors, arch.prefix, arch.layout);
  r.rename_linear("patch_embed", "embeddings.patch_embedding");
  r.rename("cls_token", "embeddings.class_embedding");
  r.rename("pos_embed", "embeddings.position_embedding.weight");
  r.skip("embeddings.position_ids");
  if (r.has("pre_layrnorm.weight")) r.rename_linear("norm_pre", "pre_layrnorm");
  for (int64_t i = 0; i < arch.vit.depth; ++i) {
    const std::string from = kLayers + std::to_string(i) + ".";
    const std::string to = "blocks." + std::to_string(i) + ".";
    r.rename_linear(to + "norm1", from + "layer_norm1");
    r.rename_linear(to + "norm2", from + "layer_norm2");
    r.rename_linear(to + "attn.q", from + "self_attn.q_proj");
    r.rename_linear(to + "attn.k", from + "self_attn.k_proj");
    r.rename_linear(to + "attn.v", from + "self_attn.v_proj");
    r.rename_linear(to + "attn.out", from + "self_attn.out_proj");
    r.rename_linear(to + "mlp.fc1", from + "mlp.fc1");
    r.rename_linear(to + "mlp.fc2", from + "mlp.fc2");
  }
  r.rename_linear("norm", "post_layernorm");
  Tensors out = r.finish();
  const std::string proj = projection_name(arch.prefix);
  if (tensors.count(proj)) out["proj.weight"] = tensors.at(proj);
  return out;
}

}  // namespace shallow::name_maps
