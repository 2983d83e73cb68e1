#pragma once
// EEGNet-v4 (Lawhern et al., 2018) with braindecode's layer names and choices (F1 = 8, D = 2,
// F2 = 16, a temporal kernel of 64 padded by 32 on both sides, batch norm with Keras'
// momentum 0.01 and eps 1e-3), ending in a Linear to embed_dim instead of the class scores.
// On x.unsqueeze(1) = [N, 1, C, T]:
//
//   conv_temporal          Conv2d(1, F1, (1, 64), padding (0, 32), no bias)   -> T + 1
//   bnorm_temporal         BatchNorm2d(F1)
//   conv_spatial           Conv2d(F1, F1 * D, (C, 1), groups F1, no bias)     depthwise over channels
//   bnorm_1, elu_1
//   pool_1, drop_1         AvgPool2d((1, 4)), Dropout(0.25)                     -> (T + 1) / 4
//   conv_separable_depth   Conv2d(F1*D, F1*D, (1, 16), padding (0, 8), groups F1*D, no bias)
//   conv_separable_point   Conv2d(F1*D, F2, (1, 1), no bias)
//   bnorm_2, elu_2
//   pool_2, drop_2         AvgPool2d((1, 8)), Dropout(0.25)
//   head                   flatten, Linear(F2 * T', embed_dim)
//
// The max-norm constraints of the original (on the spatial and the class weights) are an
// update rule of its training, not part of the layers, and are left out.
#include <memory>

#include "engine/nn/activation.h"
#include "engine/nn/batch_norm.h"
#include "engine/nn/conv.h"
#include "engine/nn/dropout.h"
#include "engine/nn/linear.h"
#include "engine/nn/pool.h"
#include "models/eeg/encoder.h"

namespace shallow::models {

class EegNet : public EegEncoder {
 public:
  static constexpr int64_t kDefaultEmbedDim = 1024;
  explicit EegNet(EegShape shape, int64_t embed_dim = kDefaultEmbedDim, double dropout = 0.25);
  Tensor forward(const Tensor& x) override;
  int64_t embed_dim() const override { return embed_dim_; }

 private:
  EegShape shape_;
  int64_t embed_dim_;
  std::shared_ptr<nn::Conv2d> conv_temporal_, conv_spatial_, conv_separable_depth_,
      conv_separable_point_;
  std::shared_ptr<nn::BatchNorm2d> bnorm_temporal_, bnorm_1_, bnorm_2_;
  std::shared_ptr<nn::ELU> elu_1_, elu_2_;
  std::shared_ptr<nn::AvgPool2d> pool_1_, pool_2_;
  std::shared_ptr<nn::Dropout> drop_1_, drop_2_;
  std::shared_ptr<nn::Linear> head_;
};

}  // namespace shallow::models
