#include "models/eeg/eegnet.h"

#include "models/eeg/input_check.h"

namespace shallow::models {
namespace {

constexpr int64_t kF1 = 8, kDepth = 2, kF2 = 16;
constexpr int64_t kTemporalKernel = 64, kSeparableKernel = 16, kPool1 = 4, kPool2 = 8;

// Time points left after each stage (padding kernel / 2 on both sides, then the pools).
int64_t output_times(int64_t times) {
  int64_t t = times + 2 * (kTemporalKernel / 2) - kTemporalKernel + 1;
  t = t / kPool1;
  t = t + 2 * (kSeparableKernel / 2) - kSeparableKernel + 1;
  return t / kPool2;
}

}  // namespace

EegNet::EegNet(EegShape shape, int64_t embed_dim, double dropout)
    : EegEncoder("EEGNet"), shape_(shape), embed_dim_(embed_dim) {
  check_eeg_shape(shape, "EEGNet");
  SH_CHECK(embed_dim > 0, "EEGNet: embed_dim must be positive, got ", embed_dim);
  const int64_t t_out = output_times(shape.times);
  SH_CHECK(t_out >= 1, "EEGNet: ", shape.times, " time points are too few for its two pools (",
           kPool1, " and ", kPool2, "); it needs at least 27");
  nn::BatchNormOptions bn{.eps = 1e-3, .momentum = 0.01};
  const int64_t f1d = kF1 * kDepth;

  conv_temporal_ = register_module(
      "conv_temporal", std::make_shared<nn::Conv2d>(
                           1, kF1, Int2{1, kTemporalKernel},
                           nn::Conv2dOptions{.padding = {0, kTemporalKernel / 2}, .bias = false}));
  bnorm_temporal_ = register_module("bnorm_temporal", std::make_shared<nn::BatchNorm2d>(kF1, bn));
  conv_spatial_ = register_module(
      "conv_spatial",
      std::make_shared<nn::Conv2d>(kF1, f1d, Int2{shape.channels, 1},
                                   nn::Conv2dOptions{.groups = kF1, .bias = false}));
  bnorm_1_ = register_module("bnorm_1", std::make_shared<nn::BatchNorm2d>(f1d, bn));
  elu_1_ = register_module("elu_1", std::make_shared<nn::ELU>());
  pool_1_ = register_module("pool_1", std::make_shared<nn::AvgPool2d>(Int2{1, kPool1}));
  drop_1_ = register_module("drop_1", std::make_shared<nn::Dropout>(dropout));
  conv_separable_depth_ = register_module(
      "conv_separable_depth",
      std::make_shared<nn::Conv2d>(
          f1d, f1d, Int2{1, kSeparableKernel},
          nn::Conv2dOptions{.padding = {0, kSeparableKernel / 2}, .groups = f1d, .bias = false}));
  conv_separable_point_ = register_module(
      "conv_separable_point",
      std::make_shared<nn::Conv2d>(f1d, kF2, Int2{1, 1}, nn::Conv2dOptions{.bias = false}));
  bnorm_2_ = register_module("bnorm_2", std::make_shared<nn::BatchNorm2d>(kF2, bn));
  elu_2_ = register_module("elu_2", std::make_shared<nn::ELU>());
  pool_2_ = register_module("pool_2", std::make_shared<nn::AvgPool2d>(Int2{1, kPool2}));
  drop_2_ = register_module("drop_2", std::make_shared<nn::Dropout>(dropout));
  head_ = register_module("head", std::make_shared<nn::Linear>(kF2 * t_out, embed_dim));
}

Tensor EegNet::forward(const Tensor& x) {
  check_eeg_input(x, shape_, "EEGNet");
  Tensor h = bnorm_temporal_->forward(conv_temporal_->forward(x.unsqueeze(1)));
  h = bnorm_1_->forward(conv_spatial_->forward(h));
  h = drop_1_->forward(pool_1_->forward(elu_1_->forward(h)));
  h = conv_separable_point_->forward(conv_separable_depth_->forward(h));
  h = drop_2_->forward(pool_2_->forward(elu_2_->forward(bnorm_2_->forward(h))));
  return head_->forward(h.flatten(1));
}

}  // namespace shallow::models
