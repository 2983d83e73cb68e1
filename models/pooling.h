#pragma once
// Layer numbering and pooling, shared by every vision backbone (see DESIGN.md, "Layer numbering
// and pooling"):
//   transformer: layer 0 is the input to block 1 (after the embeddings and any pre-norm),
//                layer l the output of block l;
//   ResNet:      layers 1..4 are the outputs of the four stages;
//   both:        kFinalLayer is the model's own image embedding.
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "engine/tensor.h"

namespace shallow::models {

// The model's own image embedding, requested beside the numbered layers.
constexpr int64_t kFinalLayer = -1;

// "4" for a numbered layer, "final" for kFinalLayer: the name used in file names (layer_4.npy).
std::string layer_name(int64_t layer);

// Layer -> its tensor, numbered layers in order, kFinalLayer first.
using LayerOutputs = std::map<int64_t, Tensor>;
// Receives each layer as soon as the forward pass has it, so that the caller can pool or store
// it and let the full tensor go.
using LayerSink = std::function<void(int64_t layer, const Tensor& value)>;

// How a layer becomes one vector per image.
enum class Pooling {
  cls,   // the class token
  mean,  // mean of the patch tokens (class and register tokens excluded)
  all,   // mean of every token
  none,  // every token kept: [N, T, D] (a feature map keeps [N, C, H, W])
};
const char* pooling_name(Pooling pooling);
// "cls", "mean", "all", "none"; anything else throws naming the choices.
Pooling parse_pooling(const std::string& name);

// tokens [N, T, D] whose first `prefix_tokens` are the class token (when `has_class_token`) and
// register tokens -> [N, D], or [N, T, D] for none. cls without a class token throws.
Tensor pool_tokens(const Tensor& tokens, Pooling pooling, int64_t prefix_tokens,
                   bool has_class_token = true);
// A feature map [N, C, H, W] -> [N, C] by its spatial mean (mean and all), or kept (none); cls
// throws, as a feature map has no class token.
Tensor pool_feature_map(const Tensor& features, Pooling pooling);

}  // namespace shallow::models
