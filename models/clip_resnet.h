#pragma once
// CLIP's ModifiedResNet (OpenAI's RN50, RN101, ... as OpenCLIP ships them), with OpenCLIP's own
// parameter names (without the `visual.` prefix):
//   stem     three 3x3 convolutions (the first with stride 2), each with batch norm and ReLU,
//            then a 2x2 average pool;
//   stages   layer1..layer4 of Bottlenecks (1x1, 3x3, 1x1 convolutions, 4x expansion); a block
//            that strides does it "anti-aliased": an average pool of the stride after the 3x3
//            convolution, and an average pool before the 1x1 convolution of its shortcut;
//   head     attnpool: the mean of the final feature map as a query token, attending over
//            itself and every position (learned position embedding), then the c_proj output.
// Layers 1..4 are the stage outputs [N, C, H, W]; kFinalLayer is the attention pool's output.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/batch_norm.h"
#include "engine/nn/container.h"
#include "engine/nn/conv.h"
#include "engine/nn/linear.h"
#include "engine/nn/module.h"
#include "models/pooling.h"

namespace shallow::models {

struct ClipResNetConfig {
  std::array<int64_t, 4> layers = {3, 4, 6, 3};  // Bottlenecks per stage
  int64_t width = 64;        // the stem's output channels; stage s has width * 2^s * 4 outputs
  int64_t output_dim = 1024; // the attention pool's output
  int64_t heads = 32;        // of the attention pool (OpenCLIP: width * 32 / 64)
  int64_t image_size = 224;  // the position embedding covers (image_size / 32)² positions
  DType dtype = DType::f32;

  int64_t embed_dim() const { return width * 32; }  // channels of the last stage
  int64_t grid() const { return image_size / 32; }
  void validate() const;
  std::string describe() const;

  static ClipResNetConfig rn50();   // (3, 4, 6, 3), width 64, 1024 out, 224 px
  static ClipResNetConfig rn101();  // (3, 4, 23, 3), width 64, 512 out, 224 px
};

// Bottleneck with 4x expansion and average-pool striding.
class ClipBottleneck : public nn::Module {
 public:
  ClipBottleneck(int64_t inplanes, int64_t planes, int64_t stride, DType dtype);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;
  // The shortcut's "0" (1x1 convolution) and "1" (batch norm), after an average pool of the
  // stride; null where the block keeps its size.
  std::shared_ptr<nn::Module> downsample;

 private:
  int64_t stride_;
};

class AttentionPool2d : public nn::Module {
 public:
  AttentionPool2d(int64_t grid, int64_t embed_dim, int64_t heads, int64_t output_dim, DType dtype);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> [N, output_dim]

  Tensor positional_embedding;  // [grid² + 1, C], the mean token's position first
  std::shared_ptr<nn::Linear> q_proj, k_proj, v_proj, c_proj;

 private:
  int64_t heads_;
};

class ClipResNet : public nn::Module {
 public:
  explicit ClipResNet(const ClipResNetConfig& config);
  const ClipResNetConfig& config() const { return config_; }

  // The requested layers (1..4 and kFinalLayer) of images [N, 3, S, S], handed to `sink` in
  // order of depth as each is computed; the pass stops after the deepest one asked for.
  void forward_layers(const Tensor& images, const std::vector<int64_t>& layers,
                      const LayerSink& sink);
  LayerOutputs forward_layers(const Tensor& images, const std::vector<int64_t>& layers);
  Tensor forward(const Tensor& images) override;  // the attention pool's output

  std::vector<int64_t> all_layers() const;  // 1, 2, 3, 4, kFinalLayer

  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;
  std::array<std::shared_ptr<nn::Sequential>, 4> stages;  // layer1..layer4
  std::shared_ptr<AttentionPool2d> attnpool;

 private:
  Tensor stem(const Tensor& images);
  ClipResNetConfig config_;
};

}  // namespace shallow::models
