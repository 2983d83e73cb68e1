#include "models/pooling.h"

#include "engine/ops/reduce.h"

namespace shallow::models {

std::string layer_name(int64_t layer) {
  return layer == kFinalLayer ? "final" : std::to_string(layer);
}

const char* pooling_name(Pooling pooling) {
  switch (pooling) {
    case Pooling::cls: return "cls";
    case Pooling::mean: return "mean";
    case Pooling::all: return "all";
    case Pooling::none: return "none";
  }
  return "?";
}

Pooling parse_pooling(const std::string& name) {
  if (name == "cls") return Pooling::cls;
  if (name == "mean") return Pooling::mean;
  if (name == "all") return Pooling::all;
  if (name == "none") return Pooling::none;
  throw Error("unknown pooling '" + name + "': expected cls, mean, all or none");
}

Tensor pool_tokens(const Tensor& tokens, Pooling pooling, int64_t prefix_tokens,
                   bool has_class_token) {
  SH_CHECK(tokens.dim() == 3, "pool_tokens: expected tokens [N, T, D], got ",
           shape_str(tokens.shape()));
  const int64_t T = tokens.size(1);
  SH_CHECK(prefix_tokens >= 0 && prefix_tokens < T, "pool_tokens: ", prefix_tokens,
           " prefix tokens in a sequence of ", T);
  switch (pooling) {
    case Pooling::cls:
      SH_CHECK(has_class_token, "pooling cls: this model has no class token (use mean or all)");
      return tokens.select(1, 0);
    case Pooling::mean: return mean(tokens.slice(1, prefix_tokens, T), {1});
    case Pooling::all: return mean(tokens, {1});
    case Pooling::none: return tokens;
  }
  return Tensor();
}

Tensor pool_feature_map(const Tensor& features, Pooling pooling) {
  SH_CHECK(features.dim() == 4, "pool_feature_map: expected a feature map [N, C, H, W], got ",
           shape_str(features.shape()));
  SH_CHECK(pooling != Pooling::cls,
           "pooling cls: a feature map has no class token (use mean for the spatial mean, or none)");
  if (pooling == Pooling::none) return features;
  return mean(features, {2, 3});
}

}  // namespace shallow::models
