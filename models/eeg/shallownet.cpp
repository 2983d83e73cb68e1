#include "models/eeg/shallownet.h"

#include "engine/ops/elementwise.h"
#include "models/eeg/input_check.h"

namespace shallow::models {
namespace {

constexpr int64_t kFilters = 40, kTemporalKernel = 25, kPool = 75, kPoolStride = 15;
constexpr double kLogFloor = 1e-6;  // braindecode's safe_log

}  // namespace

ShallowNet::ShallowNet(EegShape shape, int64_t embed_dim, double dropout)
    : EegEncoder("ShallowNet"), shape_(shape), embed_dim_(embed_dim) {
  check_eeg_shape(shape, "ShallowNet");
  SH_CHECK(embed_dim > 0, "ShallowNet: embed_dim must be positive, got ", embed_dim);
  const int64_t conv_times = shape.times - kTemporalKernel + 1;
  SH_CHECK(conv_times >= kPool, "ShallowNet: needs at least ", kTemporalKernel - 1 + kPool,
           " time points (a temporal kernel of ", kTemporalKernel, " then a pool of ", kPool,
           "), got ", shape.times);
  const int64_t t_out = (conv_times - kPool) / kPoolStride + 1;

  conv_time_ = register_module(
      "conv_time", std::make_shared<nn::Conv2d>(1, kFilters, Int2{1, kTemporalKernel}));
  conv_spat_ = register_module(
      "conv_spat", std::make_shared<nn::Conv2d>(kFilters, kFilters, Int2{shape.channels, 1},
                                                nn::Conv2dOptions{.bias = false}));
  bnorm_ = register_module("bnorm", std::make_shared<nn::BatchNorm2d>(kFilters));
  pool_ = register_module("pool",
                          std::make_shared<nn::AvgPool2d>(Int2{1, kPool}, Int2{1, kPoolStride}));
  drop_ = register_module("drop", std::make_shared<nn::Dropout>(dropout));
  head_ = register_module("head", std::make_shared<nn::Linear>(kFilters * t_out, embed_dim));
}

Tensor ShallowNet::forward(const Tensor& x) {
  check_eeg_input(x, shape_, "ShallowNet");
  Tensor h = bnorm_->forward(conv_spat_->forward(conv_time_->forward(x.unsqueeze(1))));
  h = pool_->forward(h * h);
  h = log(maximum(h, Tensor::scalar(kLogFloor, h.dtype())));
  return head_->forward(drop_->forward(h).flatten(1));
}

}  // namespace shallow::models
