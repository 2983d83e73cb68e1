#pragma once
// The one interface `shallow extract` needs from a vision backbone: which layers exist, how its
// input is preprocessed, and "these layers of these images, pooled".
//
// Families differ in their preprocessing: CLIP and OpenCLIP normalize with CLIP's mean and std
// at the model's input size; DINOv2 and timm with ImageNet's, after resizing to 256/224 of the
// input size (a center crop of 87.5 %, timm's default crop fraction and DINOv2's evaluation
// transform).
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "models/clip_resnet.h"
#include "models/pooling.h"
#include "models/preprocess.h"
#include "models/vit.h"

namespace shallow::models {

enum class BackboneFamily { clip, dinov2, timm };
const char* family_name(BackboneFamily family);
// The preprocessing of a family at a given input size.
PreprocessConfig family_preprocess(BackboneFamily family, int64_t input_size);

class Backbone {
 public:
  virtual ~Backbone() = default;

  virtual std::string describe() const = 0;
  // Every layer that can be asked for, in order of depth, kFinalLayer last.
  virtual std::vector<int64_t> layers() const = 0;
  virtual nn::Module& module() = 0;
  virtual int64_t input_size() const = 0;

  // Throws for a layer this backbone lacks, naming the ones it has.
  void check_layers(const std::vector<int64_t>& layers) const;
  // Throws when the pooling does not apply to these layers (cls without a class token).
  virtual void check_pooling(Pooling pooling, const std::vector<int64_t>& layers) const = 0;

  // The requested layers of preprocessed images [N, 3, S, S], each pooled as asked, handed to
  // `sink` as float32 in order of depth (kFinalLayer last): [N, dim] vectors, or with
  // Pooling::none [N, T, D] tokens / [N, C, H, W] feature maps. The final embedding is never
  // pooled. Runs without recording gradients; stops after the deepest layer.
  virtual void extract(const Tensor& images, const std::vector<int64_t>& layers, Pooling pooling,
                       const LayerSink& sink) = 0;
  LayerOutputs extract(const Tensor& images, const std::vector<int64_t>& layers, Pooling pooling);

  const PreprocessConfig& preprocess() const { return preprocess_; }
  void set_preprocess(const PreprocessConfig& p) { preprocess_ = p; }

 protected:
  PreprocessConfig preprocess_;
};

std::unique_ptr<Backbone> make_backbone(std::shared_ptr<VisionTransformer> vit,
                                        BackboneFamily family);
std::unique_ptr<Backbone> make_backbone(std::shared_ptr<ClipResNet> resnet);

// Layer names ("0", "4", "final", or "all" for every layer) against a backbone -> layer numbers
// (kFinalLayer for "final"), in the order given, duplicates removed. Throws for a malformed name
// or a layer the backbone lacks.
std::vector<int64_t> parse_layers(const std::vector<std::string>& names, const Backbone& backbone);

}  // namespace shallow::models
