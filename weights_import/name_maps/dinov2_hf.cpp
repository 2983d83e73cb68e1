#include "weights_import/name_maps/dinov2_hf.h"

#include "weights_import/name_maps/rename.h"

namespace shallow::name_maps {

namespace {
const std::string kLayers = "encoder.layer.";
}

bool match_hf_dinov2(const Tensors& tensors, Architecture* arch) {
  const auto prefix = find_prefix(tensors, "embeddings.patch_embeddings.projection.weight",
                                  {"embeddings.cls_token", "embeddings.position_embeddings"});
  if (!prefix) return false;
  const std::string& p = *prefix;
  const Layout L = Layout::hf_dinov2;
  const Tensor& conv = require(tensors, p + "embeddings.patch_embeddings.projection.weight", L);
  const Tensor& pos = require(tensors, p + "embeddings.position_embeddings", L);
  SH_CHECK(conv.dim() == 4 && pos.dim() == 3, "HF DINOv2 weights: projection ",
           shape_str(conv.shape()), ", position_embeddings ", shape_str(pos.shape()));
  VitShape s;
  s.width = conv.size(0);
  s.patch_size = conv.size(2);
  s.pos_grid = square_side(pos.size(1) - 1, p + "embeddings.position_embeddings");
  s.depth = count_numbered(tensors, p + kLayers, ".norm1.weight");
  s.mlp_dim = require(tensors, p + kLayers + "0.mlp.fc1.weight", L).size(0);
  if (tensors.count(p + "embeddings.register_tokens"))
    s.register_tokens = tensors.at(p + "embeddings.register_tokens").size(1);
  s.layer_scale = tensors.count(p + kLayers + "0.layer_scale1.lambda1") > 0;
  s.patch_bias = tensors.count(p + "embeddings.patch_embeddings.projection.bias") > 0;
  s.qkv_bias = tensors.count(p + kLayers + "0.attention.attention.query.bias") > 0;
  arch->layout = L;
  arch->prefix = p;
  arch->vit = s;
  return true;
}

Tensors hf_dinov2_to_canonical(const Tensors& tensors, const Architecture& arch) {
  Renamer r(tensors, arch.prefix, arch.layout);
  const int64_t D = arch.vit.width;
  r.rename_linear("patch_embed", "embeddings.patch_embeddings.projection");
  r.put("cls_token", r.take("embeddings.cls_token").reshape({D}));
  r.skip("embeddings.mask_token");
  if (r.has("embeddings.register_tokens"))
    r.put("reg_tokens",
          r.take("embeddings.register_tokens").reshape({arch.vit.register_tokens, D}));
  const Tensor pos = r.take("embeddings.position_embeddings");
  r.put("pos_embed", pos.reshape({pos.size(1), D}));
  for (int64_t i = 0; i < arch.vit.depth; ++i) {
    const std::string from = kLayers + std::to_string(i) + ".";
    const std::string to = "blocks." + std::to_string(i) + ".";
    r.rename_linear(to + "norm1", from + "norm1");
    r.rename_linear(to + "norm2", from + "norm2");
    r.rename_linear(to + "attn.q", from + "attention.attention.query");
    r.rename_linear(to + "attn.k", from + "attention.attention.key");
    r.rename_linear(to + "attn.v", from + "attention.attention.value");
    r.rename_linear(to + "attn.out", from + "attention.output.dense");
    if (r.has(from + "layer_scale1.lambda1")) {
      r.rename(to + "ls1", from + "layer_scale1.lambda1");
      r.rename(to + "ls2", from + "layer_scale2.lambda1");
    }
    r.rename_linear(to + "mlp.fc1", from + "mlp.fc1");
    r.rename_linear(to + "mlp.fc2", from + "mlp.fc2");
  }
  r.rename_linear("norm", "layernorm");
  // A classification model's head sits beside the "dinov2." tower, outside the prefix; a bare
  // model's file has nothing else.
  return r.finish();
}

}  // namespace shallow::name_maps
