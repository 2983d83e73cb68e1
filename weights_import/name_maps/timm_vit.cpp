#include "weights_import/name_maps/timm_vit.h"

#include "weights_import/name_maps/rename.h"

namespace shallow::name_maps {

bool match_timm_vit(const Tensors& tensors, Architecture* arch) {
  const auto prefix =
      find_prefix(tensors, "patch_embed.proj.weight", {"pos_embed", "blocks.0.attn.qkv.weight"});
  if (!prefix) return false;
  const std::string& p = *prefix;
  const bool dinov2 = tensors.count(p + "mask_token") || tensors.count(p + "register_tokens");
  const Layout L = dinov2 ? Layout::dinov2 : Layout::timm_vit;
  SH_CHECK(!tensors.count(p + "reg_token"), "timm ViT weights: register tokens (reg_token) are "
           "not supported (timm gives them position embeddings, DINOv2 does not)");
  const Tensor& conv = require(tensors, p + "patch_embed.proj.weight", L);
  const Tensor& pos = require(tensors, p + "pos_embed", L);
  SH_CHECK(conv.dim() == 4 && pos.dim() == 3, layout_name(L), " weights: patch_embed.proj ",
           shape_str(conv.shape()), ", pos_embed ", shape_str(pos.shape()));
  VitShape s;
  s.width = conv.size(0);
  s.patch_size = conv.size(2);
  s.class_token = tensors.count(p + "cls_token") > 0;
  const int64_t positions = pos.size(1) - (s.class_token ? 1 : 0);
  SH_CHECK(s.class_token || !tensors.count(p + "norm.weight") || tensors.count(p + "fc_norm.weight"),
           layout_name(L), " weights without a class token and without fc_norm: not supported");
  s.pos_grid = square_side(positions, p + "pos_embed (class position excluded)");
  s.depth = count_numbered(tensors, p + "blocks.", ".norm1.weight");
  s.mlp_dim = require(tensors, p + "blocks.0.mlp.fc1.weight", L).size(0);
  if (tensors.count(p + "register_tokens"))
    s.register_tokens = tensors.at(p + "register_tokens").size(1);
  s.pre_norm = tensors.count(p + "norm_pre.weight") > 0;
  s.layer_scale = tensors.count(p + "blocks.0.ls1.gamma") > 0;
  s.patch_bias = tensors.count(p + "patch_embed.proj.bias") > 0;
  s.qkv_bias = tensors.count(p + "blocks.0.attn.qkv.bias") > 0;
  s.final_patch_mean = tensors.count(p + "fc_norm.weight") > 0;
  arch->layout = L;
  arch->prefix = p;
  arch->vit = s;
  return true;
}

Tensors timm_vit_to_canonical(const Tensors& tensors, const Architecture& arch) {
  Renamer r(tensors, arch.prefix, arch.layout);
  const int64_t D = arch.vit.width;
  r.rename_linear("patch_embed", "patch_embed.proj");
  if (r.has("cls_token")) r.put("cls_token", r.take("cls_token").reshape({D}));
  if (r.has("register_tokens"))
    r.put("reg_tokens", r.take("register_tokens").reshape({arch.vit.register_tokens, D}));
  r.skip("mask_token");
  const Tensor pos = r.take("pos_embed");
  r.put("pos_embed", pos.reshape({pos.size(1), D}));
  if (r.has("norm_pre.weight")) r.rename_linear("norm_pre", "norm_pre");
  for (int64_t i = 0; i < arch.vit.depth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    r.rename_linear(b + "norm1", b + "norm1");
    r.rename_linear(b + "norm2", b + "norm2");
    r.split_qkv(b + "attn", b + "attn.qkv.weight", b + "attn.qkv.bias");
    r.rename_linear(b + "attn.out", b + "attn.proj");
    if (r.has(b + "ls1.gamma")) {
      r.rename(b + "ls1", b + "ls1.gamma");
      r.rename(b + "ls2", b + "ls2.gamma");
    }
    r.rename_linear(b + "mlp.fc1", b + "mlp.fc1");
    r.rename_linear(b + "mlp.fc2", b + "mlp.fc2");
  }
  r.rename_linear("norm", arch.vit.final_patch_mean ? "fc_norm" : "norm");
  r.skip_under("head.");
  return r.finish();
}

}  // namespace shallow::name_maps
