#include "models/clip_resnet.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "engine/nn/conv_bn.h"
#include "engine/ops/attention.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/indexing.h"
#include "engine/ops/reduce.h"

namespace shallow::models {

void ClipResNetConfig::validate() const {
  for (int64_t n : layers) SH_CHECK(n > 0, "ClipResNet config: every stage needs a block");
  SH_CHECK(width > 0 && width % 2 == 0, "ClipResNet config: width ", width, " must be even");
  SH_CHECK(heads > 0 && embed_dim() % heads == 0, "ClipResNet config: ", embed_dim(),
           " channels are not divisible by ", heads, " heads");
  SH_CHECK(output_dim > 0 && image_size >= 32, "ClipResNet config: output dim ", output_dim,
           ", image size ", image_size);
}

std::string ClipResNetConfig::describe() const {
  std::ostringstream s;
  s << "CLIP ModifiedResNet: blocks (" << layers[0] << ", " << layers[1] << ", " << layers[2]
    << ", " << layers[3] << "), width " << width << ", attention pool " << heads << " heads to "
    << output_dim << ", input " << image_size << " px";
  return s.str();
}

ClipResNetConfig ClipResNetConfig::rn50() { return {{3, 4, 6, 3}, 64, 1024, 32, 224}; }
ClipResNetConfig ClipResNetConfig::rn101() { return {{3, 4, 23, 3}, 64, 512, 32, 224}; }

namespace {

std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t k, DType dtype,
                                 int64_t stride = 1) {
  const int64_t pad = k / 2;
  return std::make_shared<nn::Conv2d>(
      in, out, Int2{k, k},
      nn::Conv2dOptions{.stride = {stride, stride}, .padding = {pad, pad}, .bias = false,
                        .dtype = dtype});
}

std::shared_ptr<nn::BatchNorm2d> batch_norm(int64_t channels, DType dtype) {
  return std::make_shared<nn::BatchNorm2d>(channels, nn::BatchNormOptions{.dtype = dtype});
}

Tensor avg_pool(const Tensor& x, int64_t k) { return k > 1 ? avg_pool2d(x, {k, k}) : x; }

// The shortcut of a block that changes size: average pool (OpenCLIP's weightless "-1"), then the
// 1x1 convolution "0" and the batch norm "1".
class ClipDownsample : public nn::Module {
 public:
  ClipDownsample(int64_t in, int64_t out, int64_t stride, DType dtype)
      : nn::Module("ClipDownsample"), stride_(stride) {
    conv_ = register_module("0", conv(in, out, 1, dtype));
    bn_ = register_module("1", batch_norm(out, dtype));
  }
  Tensor forward(const Tensor& x) override {
    return nn::conv_bn(*conv_, *bn_, avg_pool(x, stride_), false);
  }

 private:
  int64_t stride_;
  std::shared_ptr<nn::Conv2d> conv_;
  std::shared_ptr<nn::BatchNorm2d> bn_;
};

}  // namespace

ClipBottleneck::ClipBottleneck(int64_t inplanes, int64_t planes, int64_t stride, DType dtype)
    : nn::Module("ClipBottleneck"), stride_(stride) {
  conv1 = register_module("conv1", conv(inplanes, planes, 1, dtype));
  bn1 = register_module("bn1", batch_norm(planes, dtype));
  conv2 = register_module("conv2", conv(planes, planes, 3, dtype));
  bn2 = register_module("bn2", batch_norm(planes, dtype));
  conv3 = register_module("conv3", conv(planes, planes * 4, 1, dtype));
  bn3 = register_module("bn3", batch_norm(planes * 4, dtype));
  if (stride > 1 || inplanes != planes * 4)
    downsample = register_module(
        "downsample", std::make_shared<ClipDownsample>(inplanes, planes * 4, stride, dtype));
}

// conv_bn runs each convolution with its batch norm, the shortcut's sum and the ReLU in one
// pass where the batch norms use their running statistics (inference).
Tensor ClipBottleneck::forward(const Tensor& x) {
  Tensor out = nn::conv_bn(*conv1, *bn1, x, true);
  out = nn::conv_bn(*conv2, *bn2, out, true);
  const Tensor identity = downsample ? downsample->forward(x) : x;
  return nn::conv_bn(*conv3, *bn3, avg_pool(out, stride_), true, identity);
}

AttentionPool2d::AttentionPool2d(int64_t grid, int64_t embed_dim, int64_t heads,
                                 int64_t output_dim, DType dtype)
    : nn::Module("AttentionPool2d"), heads_(heads) {
  positional_embedding = register_parameter(
      "positional_embedding", Tensor::zeros({grid * grid + 1, embed_dim}, dtype));
  q_proj = register_module("q_proj", std::make_shared<nn::Linear>(embed_dim, embed_dim, true, dtype));
  k_proj = register_module("k_proj", std::make_shared<nn::Linear>(embed_dim, embed_dim, true, dtype));
  v_proj = register_module("v_proj", std::make_shared<nn::Linear>(embed_dim, embed_dim, true, dtype));
  c_proj = register_module("c_proj", std::make_shared<nn::Linear>(embed_dim, output_dim, true, dtype));
}

Tensor AttentionPool2d::forward(const Tensor& x) {
  SH_CHECK(x.dim() == 4, "AttentionPool2d: expected [N, C, H, W], got ", shape_str(x.shape()));
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  SH_CHECK(C == positional_embedding.size(1) && HW + 1 == positional_embedding.size(0),
           "AttentionPool2d: a feature map ", shape_str(x.shape()), " but the position embedding ",
           shape_str(positional_embedding.shape()), " is for ", positional_embedding.size(0) - 1,
           " positions of ", positional_embedding.size(1), " channels (input size fixed by the weights)");
  const Tensor tokens = x.flatten(2).transpose(1, 2);  // [N, HW, C]
  const Tensor seq = concat({mean(tokens, {1}, true), tokens}, 1) + positional_embedding;
  // Only the mean token queries: one output token per image.
  const int64_t hd = C / heads_;
  auto heads = [&](const Tensor& y, int64_t len) {
    return y.view({N, len, heads_, hd}).transpose(1, 2);
  };
  const Tensor q = heads(q_proj->forward(seq.slice(1, 0, 1)), 1);
  const Tensor o = scaled_dot_product_attention(q, heads(k_proj->forward(seq), HW + 1),
                                                heads(v_proj->forward(seq), HW + 1));
  return c_proj->forward(o.reshape({N, C}));  // [N, heads, 1, hd] -> [N, C]
}

ClipResNet::ClipResNet(const ClipResNetConfig& config)
    : nn::Module("ClipResNet"), config_(config) {
  config_.validate();
  const ClipResNetConfig& c = config_;
  const DType dt = c.dtype;
  conv1 = register_module("conv1", conv(3, c.width / 2, 3, dt, 2));
  bn1 = register_module("bn1", batch_norm(c.width / 2, dt));
  conv2 = register_module("conv2", conv(c.width / 2, c.width / 2, 3, dt));
  bn2 = register_module("bn2", batch_norm(c.width / 2, dt));
  conv3 = register_module("conv3", conv(c.width / 2, c.width, 3, dt));
  bn3 = register_module("bn3", batch_norm(c.width, dt));
  int64_t inplanes = c.width;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = c.width << s;
    auto stage = std::make_shared<nn::Sequential>();
    for (int64_t b = 0; b < c.layers[size_t(s)]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      stage->push_back(std::make_shared<ClipBottleneck>(inplanes, planes, stride, dt));
      inplanes = planes * 4;
    }
    stages[size_t(s)] = register_module("layer" + std::to_string(s + 1), stage);
  }
  attnpool = register_module("attnpool", std::make_shared<AttentionPool2d>(
                                             c.grid(), c.embed_dim(), c.heads, c.output_dim, dt));
  eval();  // batch norm uses its running statistics
}

std::vector<int64_t> ClipResNet::all_layers() const { return {1, 2, 3, 4, kFinalLayer}; }

Tensor ClipResNet::stem(const Tensor& images) {
  Tensor x = nn::conv_bn(*conv1, *bn1, images, true);
  x = nn::conv_bn(*conv2, *bn2, x, true);
  x = nn::conv_bn(*conv3, *bn3, x, true);
  return avg_pool(x, 2);
}

void ClipResNet::forward_layers(const Tensor& images, const std::vector<int64_t>& layers,
                                const LayerSink& sink) {
  std::set<int64_t> wanted;
  bool want_final = false;
  for (int64_t l : layers) {
    SH_CHECK(l == kFinalLayer || (l >= 1 && l <= 4), "layer ", l,
             " does not exist: a CLIP ResNet has layers 1..4 (its stages) and final");
    if (l == kFinalLayer) want_final = true;
    else wanted.insert(l);
  }
  if (wanted.empty() && !want_final) return;
  SH_CHECK(images.dim() == 4 && images.size(1) == 3, "ClipResNet: expected images [N, 3, H, W], got ",
           shape_str(images.shape()));
  const int64_t deepest = want_final ? 4 : *wanted.rbegin();
  Tensor x = stem(images.dtype() == config_.dtype ? images : images.to(config_.dtype));
  for (int64_t s = 1; s <= deepest; ++s) {
    // Block by block, so that each block's input goes once the next block has it.
    for (size_t b = 0; b < stages[size_t(s - 1)]->size(); ++b)
      x = (*stages[size_t(s - 1)])[b]->forward(x);
    if (wanted.count(s)) sink(s, x);
  }
  if (want_final) sink(kFinalLayer, attnpool->forward(x));
}

LayerOutputs ClipResNet::forward_layers(const Tensor& images, const std::vector<int64_t>& layers) {
  LayerOutputs out;
  forward_layers(images, layers, [&](int64_t l, const Tensor& t) { out[l] = t; });
  return out;
}

Tensor ClipResNet::forward(const Tensor& images) {
  return forward_layers(images, {kFinalLayer}).at(kFinalLayer);
}

}  // namespace shallow::models
