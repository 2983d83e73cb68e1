#include "weights_import/name_maps/openclip_resnet.h"

#include "weights_import/name_maps/rename.h"

namespace shallow::name_maps {

bool match_openclip_resnet(const Tensors& tensors, Architecture* arch) {
  const auto prefix = find_prefix(tensors, "attnpool.positional_embedding",
                                  {"layer1.0.conv1.weight", "conv3.weight", "attnpool.c_proj.weight"});
  if (!prefix) return false;
  const std::string& p = *prefix;
  const Layout L = Layout::openclip_resnet;
  ResNetShape s;
  s.width = require(tensors, p + "conv3.weight", L).size(0);
  for (int i = 0; i < 4; ++i)
    s.layers[size_t(i)] =
        count_numbered(tensors, p + "layer" + std::to_string(i + 1) + ".", ".conv1.weight");
  s.output_dim = require(tensors, p + "attnpool.c_proj.weight", L).size(0);
  s.grid = square_side(require(tensors, p + "attnpool.positional_embedding", L).size(0) - 1,
                       p + "attnpool.positional_embedding");
  arch->layout = L;
  arch->prefix = p;
  arch->resnet = s;
  return true;
}

Tensors openclip_resnet_to_canonical(const Tensors& tensors, const Architecture& arch) {
  // The names are already canonical under the prefix; the model's strict load reports anything
  // it lacks or does not know.
  Tensors out;
  for (const auto& [name, t] : tensors)
    if (name.compare(0, arch.prefix.size(), arch.prefix) == 0)
      out[name.substr(arch.prefix.size())] = t;
  return out;
}

}  // namespace shallow::name_maps
