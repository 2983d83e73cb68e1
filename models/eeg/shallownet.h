#pragma once
// ShallowConvNet (Schirrmeister et al., 2017) with braindecode's layer names and choices (40
// filters, a temporal kernel of 25, batch norm momentum 0.1 and eps 1e-5, a mean pool of 75
// with stride 15), with time along the last axis, ending in a Linear to embed_dim instead of
// the class scores. On x.unsqueeze(1) = [N, 1, C, T]:
//
//   conv_time   Conv2d(1, 40, (1, 25))
//   conv_spat   Conv2d(40, 40, (C, 1), no bias)
//   bnorm       BatchNorm2d(40)
//   square      x * x
//   pool        AvgPool2d((1, 75), (1, 15))
//   safe log    log(max(x, 1e-6))
//   drop        Dropout(0.5)
//   head        flatten, Linear(40 * T', embed_dim),  T' = (T - 24 - 75) / 15 + 1
#include <memory>

#include "engine/nn/batch_norm.h"
#include "engine/nn/conv.h"
#include "engine/nn/dropout.h"
#include "engine/nn/linear.h"
#include "engine/nn/pool.h"
#include "models/eeg/encoder.h"

namespace shallow::models {

class ShallowNet : public EegEncoder {
 public:
  static constexpr int64_t kDefaultEmbedDim = 1024;
  explicit ShallowNet(EegShape shape, int64_t embed_dim = kDefaultEmbedDim, double dropout = 0.5);
  Tensor forward(const Tensor& x) override;
  int64_t embed_dim() const override { return embed_dim_; }

 private:
  EegShape shape_;
  int64_t embed_dim_;
  std::shared_ptr<nn::Conv2d> conv_time_, conv_spat_;
  std::shared_ptr<nn::BatchNorm2d> bnorm_;
  std::shared_ptr<nn::AvgPool2d> pool_;
  std::shared_ptr<nn::Dropout> drop_;
  std::shared_ptr<nn::Linear> head_;
};

}  // namespace shallow::models
