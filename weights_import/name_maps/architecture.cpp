#include "weights_import/name_maps/architecture.h"

#include <sstream>

#include "weights_import/name_maps/clip_hf.h"
#include "weights_import/name_maps/dinov2_hf.h"
#include "weights_import/name_maps/openclip.h"
#include "weights_import/name_maps/openclip_resnet.h"
#include "weights_import/name_maps/timm_vit.h"

namespace shallow::name_maps {

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::openclip_vit: return "OpenCLIP/OpenAI CLIP ViT";
    case Layout::hf_clip: return "HF CLIP";
    case Layout::timm_vit: return "timm ViT";
    case Layout::hf_dinov2: return "HF DINOv2";
    case Layout::dinov2: return "DINOv2";
    case Layout::openclip_resnet: return "OpenCLIP/OpenAI CLIP ModifiedResNet";
  }
  return "?";
}

std::string Architecture::describe() const {
  std::ostringstream s;
  s << layout_name(layout);
  if (!prefix.empty()) s << " (names under '" << prefix << "')";
  if (is_resnet()) {
    s << ": stages (" << resnet.layers[0] << ", " << resnet.layers[1] << ", " << resnet.layers[2]
      << ", " << resnet.layers[3] << "), width " << resnet.width << ", output "
      << resnet.output_dim << ", grid " << resnet.grid;
  } else {
    s << ": width " << vit.width << ", " << vit.depth << " blocks, patch " << vit.patch_size
      << ", position grid " << vit.pos_grid << ", mlp " << vit.mlp_dim;
    if (vit.register_tokens) s << ", " << vit.register_tokens << " registers";
    if (vit.proj_dim) s << ", projection " << vit.proj_dim;
  }
  return s.str();
}

Architecture detect_architecture(const Tensors& tensors) {
  Architecture arch;
  // The HF layouts first: their names also end like the others' markers in places.
  if (match_hf_clip(tensors, &arch) || match_hf_dinov2(tensors, &arch) ||
      match_openclip_vit(tensors, &arch) || match_openclip_resnet(tensors, &arch) ||
      match_timm_vit(tensors, &arch))
    return arch;
  std::ostringstream names;
  int shown = 0;
  for (const auto& [name, t] : tensors) {
    if (shown++ == 6) {
      names << ", ...";
      break;
    }
    names << (shown > 1 ? ", " : "") << name;
  }
  throw Error(str_cat("unknown weights layout: not an OpenCLIP/OpenAI CLIP ViT or ModifiedResNet, "
                      "HF CLIP, HF DINOv2, DINOv2 or timm ViT (", tensors.size(), " tensors: ",
                      tensors.empty() ? "none" : names.str(), ")"));
}

Tensors to_canonical(const Tensors& tensors, const Architecture& arch) {
  switch (arch.layout) {
    case Layout::openclip_vit: return openclip_vit_to_canonical(tensors, arch);
    case Layout::hf_clip: return hf_clip_to_canonical(tensors, arch);
    case Layout::timm_vit:
    case Layout::dinov2: return timm_vit_to_canonical(tensors, arch);
    case Layout::hf_dinov2: return hf_dinov2_to_canonical(tensors, arch);
    case Layout::openclip_resnet: return openclip_resnet_to_canonical(tensors, arch);
  }
  throw Error("to_canonical: unknown layout");
}

}  // namespace shallow::name_maps
