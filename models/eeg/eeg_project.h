#pragma once
// EEGProject, the projector of the ATM and UBP code bases that Shallow Alignment trains by
// default: the whole trial flattened (C*T) and projected,
//   flatten -> Linear(C*T, proj_dim) -> x + Dropout(0.3)(Linear(GELU(x))) -> LayerNorm
// Parameters under "model." as published ("model.0.weight", "model.1.fn.1.weight", "model.2.weight").
#include <memory>

#include "engine/nn/container.h"
#include "models/eeg/encoder.h"

namespace shallow::models {

class EegProject : public EegEncoder {
 public:
  static constexpr int64_t kDefaultEmbedDim = 1024;
  explicit EegProject(EegShape shape, int64_t proj_dim = kDefaultEmbedDim, double dropout = 0.3);
  Tensor forward(const Tensor& x) override;
  int64_t embed_dim() const override { return proj_dim_; }

 private:
  EegShape shape_;
  int64_t proj_dim_;
  std::shared_ptr<nn::Sequential> model_;
};

}  // namespace shallow::models
