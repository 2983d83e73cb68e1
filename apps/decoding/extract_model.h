#pragma once
// A weights file -> a ready vision backbone: read the file (any format weights_import reads),
// recognize its layout and shapes from its tensors, fill what the tensors cannot say from a
// config file and the family's defaults, build the model and load the weights under their
// canonical names.
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/backbone.h"
#include "weights_import/name_maps/architecture.h"

namespace shallow::decoding {

// What a config file adds to the tensors; zero / empty where it says nothing.
struct ModelSettings {
  std::string source;  // the file, for messages
  int64_t heads = 0;
  std::optional<models::Activation> act;
  double ln_eps = 0;
  int64_t input_size = 0;   // the side the model runs at (DINOv2: 224 unless given)
  int64_t resize_size = 0;  // the shorter side before the center crop
  std::optional<std::array<float, 3>> mean, std;
  int64_t width = 0, depth = 0;  // as the config states them, checked against the weights
};

// Reads a config: HF's config.json or OpenCLIP's open_clip_config.json / model config (through
// weights_import's reader), or this project's own JSON with any of the keys heads, act,
// ln_eps, input_size, resize_size, mean, std. An unknown key in the latter is an error.
ModelSettings read_model_settings(const std::string& path);

struct BackboneOptions {
  // A config file; empty: a config.json or open_clip_config.json beside the weights is used
  // when there is one.
  std::string config_path;
  std::optional<models::Activation> act;  // overrides the config and the default
  DType dtype = DType::f32;               // of the model's parameters
};

struct LoadedBackbone {
  std::unique_ptr<models::Backbone> backbone;
  name_maps::Architecture architecture;
  std::vector<std::string> notes;  // what was read from where, and what was assumed
};

LoadedBackbone load_backbone(const std::string& weights_path, const BackboneOptions& options = {});
// The same from tensors already read.
LoadedBackbone load_backbone(const name_maps::Tensors& tensors, const ModelSettings& settings,
                             const BackboneOptions& options = {});

}  // namespace shallow::decoding
