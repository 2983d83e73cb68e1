#pragma once
// Pooling modules over NCHW, thin wrappers of engine/ops/conv.h.
#include "engine/nn/module.h"
#include "engine/ops/conv.h"

namespace shallow::nn {

// stride {0, 0} means "equal to the kernel", as PyTorch's default.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Int2 kernel, Int2 stride = {0, 0}, Int2 padding = {0, 0})
      : Module("MaxPool2d"), kernel_(kernel), stride_(stride), padding_(padding) {}
  Tensor forward(const Tensor& x) override;

 private:
  Int2 kernel_, stride_, padding_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Int2 kernel, Int2 stride = {0, 0}, Int2 padding = {0, 0})
      : Module("AvgPool2d"), kernel_(kernel), stride_(stride), padding_(padding) {}
  Tensor forward(const Tensor& x) override;

 private:
  Int2 kernel_, stride_, padding_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Int2 output_size) : Module("AdaptiveAvgPool2d"), out_(output_size) {}
  Tensor forward(const Tensor& x) override;

 private:
  Int2 out_;
};

}  // namespace shallow::nn
