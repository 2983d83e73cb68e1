#pragma once
#include "engine/nn/module.h"

namespace shallow::nn {

// Zeroes elements with probability p (scaling the rest by 1/(1-p)) in training; identity in eval.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }

 private:
  double p_;
};

// Zeroes whole channels (dim 1 of [N, C, ...]) in training, as torch.nn.Dropout2d.
class Dropout2d : public Module {
 public:
  explicit Dropout2d(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace shallow::nn
