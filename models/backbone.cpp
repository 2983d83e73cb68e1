#include "models/backbone.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "engine/autograd.h"

namespace shallow::models {

const char* family_name(BackboneFamily family) {
  switch (family) {
    case BackboneFamily::clip: return "clip";
    case BackboneFamily::dinov2: return "dinov2";
    case BackboneFamily::timm: return "timm";
  }
  return "?";
}

PreprocessConfig family_preprocess(BackboneFamily family, int64_t input_size) {
  const int size = int(input_size);
  if (family == BackboneFamily::clip) return PreprocessConfig::clip(size);
  // Resize to 256/224 of the crop (256 for 224), rounded down as timm's int(size / 0.875).
  return PreprocessConfig::dinov2(int(std::floor(double(size) / 0.875)), size);
}

namespace {

std::string layer_list_text(const std::vector<int64_t>& layers) {
  std::ostringstream s;
  const bool has_final = !layers.empty() && layers.back() == kFinalLayer;
  const size_t numbered = layers.size() - (has_final ? 1 : 0);
  if (numbered > 0) s << layers.front() << ".." << layers[numbered - 1];
  if (has_final) s << (numbered > 0 ? " and " : "") << "final";
  return s.str();
}

bool only_final(const std::vector<int64_t>& layers) {
  return std::all_of(layers.begin(), layers.end(), [](int64_t l) { return l == kFinalLayer; });
}

// Both backbones hand out float32, contiguous tensors whatever the model computes in. A bf16
// model's layers are widened before pooling, so that means are taken and kept in f32.
Tensor as_output(const Tensor& t) { return t.detach().to(DType::f32).contiguous(); }
Tensor as_f32(const Tensor& t) { return t.detach().to(DType::f32); }

class VitBackbone : public Backbone {
 public:
  VitBackbone(std::shared_ptr<VisionTransformer> vit, BackboneFamily family)
      : vit_(std::move(vit)), family_(family) {
    preprocess_ = family_preprocess(family, vit_->config().image_size);
  }
  std::string describe() const override {
    return vit_->config().describe() + " [" + family_name(family_) + "]";
  }
  std::vector<int64_t> layers() const override { return vit_->all_layers(); }
  nn::Module& module() override { return *vit_; }
  int64_t input_size() const override { return vit_->config().image_size; }

  void check_pooling(Pooling pooling, const std::vector<int64_t>& layers) const override {
    SH_CHECK(pooling != Pooling::cls || vit_->config().class_token || only_final(layers),
             "pooling cls: this ViT has no class token (use mean or all)");
  }

  void extract(const Tensor& images, const std::vector<int64_t>& layers, Pooling pooling,
               const LayerSink& sink) override {
    check_layers(layers);
    check_pooling(pooling, layers);
    NoGrad no_grad;
    const VitConfig& c = vit_->config();
    vit_->forward_layers(images, layers, [&](int64_t layer, const Tensor& value) {
      if (layer == kFinalLayer) sink(layer, as_output(value));
      else sink(layer, as_output(pool_tokens(as_f32(value), pooling, c.prefix_tokens(), c.class_token)));
    });
  }

 private:
  std::shared_ptr<VisionTransformer> vit_;
  BackboneFamily family_;
};

class ResNetBackbone : public Backbone {
 public:
  explicit ResNetBackbone(std::shared_ptr<ClipResNet> net) : net_(std::move(net)) {
    preprocess_ = family_preprocess(BackboneFamily::clip, net_->config().image_size);
  }
  std::string describe() const override { return net_->config().describe() + " [clip]"; }
  std::vector<int64_t> layers() const override { return net_->all_layers(); }
  nn::Module& module() override { return *net_; }
  int64_t input_size() const override { return net_->config().image_size; }

  void check_pooling(Pooling pooling, const std::vector<int64_t>& layers) const override {
    SH_CHECK(pooling != Pooling::cls || only_final(layers),
             "pooling cls: a ResNet's stages have no class token (use mean for the spatial mean, "
             "or none)");
  }

  void extract(const Tensor& images, const std::vector<int64_t>& layers, Pooling pooling,
               const LayerSink& sink) override {
    check_layers(layers);
    check_pooling(pooling, layers);
    NoGrad no_grad;
    net_->forward_layers(images, layers, [&](int64_t layer, const Tensor& value) {
      if (layer == kFinalLayer) sink(layer, as_output(value));
      else sink(layer, as_output(pool_feature_map(as_f32(value), pooling)));
    });
  }

 private:
  std::shared_ptr<ClipResNet> net_;
};

}  // namespace

void Backbone::check_layers(const std::vector<int64_t>& requested) const {
  const std::vector<int64_t> valid = layers();
  for (int64_t l : requested)
    SH_CHECK(std::find(valid.begin(), valid.end(), l) != valid.end(), "layer ", l,
             " does not exist: this model has layers ", layer_list_text(valid));
}

LayerOutputs Backbone::extract(const Tensor& images, const std::vector<int64_t>& layers,
                               Pooling pooling) {
  LayerOutputs out;
  extract(images, layers, pooling, [&](int64_t l, const Tensor& t) { out[l] = t; });
  return out;
}

std::unique_ptr<Backbone> make_backbone(std::shared_ptr<VisionTransformer> vit,
                                        BackboneFamily family) {
  return std::make_unique<VitBackbone>(std::move(vit), family);
}

std::unique_ptr<Backbone> make_backbone(std::shared_ptr<ClipResNet> resnet) {
  return std::make_unique<ResNetBackbone>(std::move(resnet));
}

std::vector<int64_t> parse_layers(const std::vector<std::string>& names, const Backbone& backbone) {
  std::vector<int64_t> out;
  auto add = [&](int64_t l) {
    if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
  };
  SH_CHECK(!names.empty(), "no layers given: expected e.g. 0,4,6,final or all");
  for (const std::string& name : names) {
    if (name == "all") {
      for (int64_t l : backbone.layers()) add(l);
    } else if (name == "final") {
      add(kFinalLayer);
    } else {
      char* end = nullptr;
      const long long v = name.empty() ? -1 : std::strtoll(name.c_str(), &end, 10);
      SH_CHECK(!name.empty() && end && *end == '\0' && v >= 0, "bad layer '", name,
               "': expected a layer number, final or all");
      add(int64_t(v));
    }
  }
  backbone.check_layers(out);
  return out;
}

}  // namespace shallow::models
