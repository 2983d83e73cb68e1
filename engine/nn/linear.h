#pragma once
#include "engine/nn/module.h"

namespace shallow::nn {

// y = x W^T + b over the last dim. weight [out, in], bias [out]. PyTorch's default
// initialization: W ~ kaiming-uniform (a = sqrt(5)), b ~ U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) override;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  int64_t in_features_, out_features_;
};

}  // namespace shallow::nn
