#pragma once
// OpenAI CLIP / OpenCLIP ModifiedResNet -> canonical names, which are OpenCLIP's own without the
// `visual.` prefix (docs/MODEL_NAMES.md): conv1..3, bn1..3, layer{1..4}.{j}.*, attnpool.*.
#include "weights_import/name_maps/architecture.h"

namespace shallow::name_maps {

bool match_openclip_resnet(const Tensors& tensors, Architecture* arch);
Tensors openclip_resnet_to_canonical(const Tensors& tensors, const Architecture& arch);

}  // namespace shallow::name_maps
