#include "weights_import/name_maps/openclip.h"

#include "weights_import/name_maps/rename.h"

namespace shallow::name_maps {

namespace {
const std::string kBlocks = "transformer.resblocks.";
}

bool match_openclip_vit(const Tensors& tensors, Architecture* arch) {
  const auto prefix = find_prefix(tensors, "class_embedding",
                                  {"conv1.weight", kBlocks + "0.attn.in_proj_weight"});
  if (!prefix) return false;
  const std::string& p = *prefix;
  const Layout L = Layout::openclip_vit;
  const Tensor& conv = require(tensors, p + "conv1.weight", L);
  const Tensor& pos = require(tensors, p + "positional_embedding", L);
  SH_CHECK(conv.dim() == 4 && pos.dim() == 2, "OpenCLIP ViT weights: conv1 ",
           shape_str(conv.shape()), ", positional_embedding ", shape_str(pos.shape()));
  VitShape s;
  s.width = conv.size(0);
  s.patch_size = conv.size(2);
  s.pos_grid = square_side(pos.size(0) - 1, p + "positional_embedding");
  s.depth = count_numbered(tensors, p + kBlocks, ".ln_1.weight");
  s.mlp_dim = require(tensors, p + kBlocks + "0.mlp.c_fc.weight", L).size(0);
  if (tensors.count(p + "proj")) s.proj_dim = tensors.at(p + "proj").size(1);
  s.pre_norm = tensors.count(p + "ln_pre.weight") > 0;
  s.layer_scale = tensors.count(p + kBlocks + "0.ls_1.gamma") > 0;
  s.patch_bias = tensors.count(p + "conv1.bias") > 0;
  s.qkv_bias = tensors.count(p + kBlocks + "0.attn.in_proj_bias") > 0;
  arch->layout = L;
  arch->prefix = p;
  arch->vit = s;
  return true;
}

Tensors openclip_vit_to_canonical(const Tensors& tensors, const Architecture& arch) {
  Renamer r(tensors, arch.prefix, arch.layout);
  r.rename_linear("patch_embed", "conv1");
  r.rename("cls_token", "class_embedding");
  r.rename("pos_embed", "positional_embedding");
  if (r.has("ln_pre.weight")) r.rename_linear("norm_pre", "ln_pre");
  for (int64_t i = 0; i < arch.vit.depth; ++i) {
    const std::string from = kBlocks + std::to_string(i) + ".";
    const std::string to = "blocks." + std::to_string(i) + ".";
    r.rename_linear(to + "norm1", from + "ln_1");
    r.rename_linear(to + "norm2", from + "ln_2");
    r.split_qkv(to + "attn", from + "attn.in_proj_weight", from + "attn.in_proj_bias");
    r.rename_linear(to + "attn.out", from + "attn.out_proj");
    if (r.has(from + "ls_1.gamma")) {
      r.rename(to + "ls1", from + "ls_1.gamma");
      r.rename(to + "ls2", from + "ls_2.gamma");
    }
    r.rename_linear(to + "mlp.fc1", from + "mlp.c_fc");
    r.rename_linear(to + "mlp.fc2", from + "mlp.c_proj");
  }
  r.rename_linear("norm", "ln_post");
  if (r.has("proj")) r.put("proj.weight", r.take("proj").t());
  return r.finish();
}

}  // namespace shallow::name_maps
