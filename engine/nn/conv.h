#pragma once
// Convolutions with PyTorch's layouts and default initialization (kaiming-uniform weights with
// a = sqrt(5), bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))). Options use designated initializers:
//   nn::Conv2d(3, 16, {3, 3}, {.padding = {1, 1}, .bias = false})
#include "engine/nn/module.h"
#include "engine/ops/conv.h"

namespace shallow::nn {

struct Conv1dOptions {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
  DType dtype = DType::f32;
};

// x [N, C_in, L]; weight [C_out, C_in/groups, k].
class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv1dOptions opt = {});
  Tensor forward(const Tensor& x) override;

  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  int64_t in_channels_;
  Conv1dOptions opt_;
};

struct Conv2dOptions {
  Int2 stride = {1, 1}, padding = {0, 0}, dilation = {1, 1};
  int64_t groups = 1;
  bool bias = true;
  DType dtype = DType::f32;
};

// x [N, C_in, H, W]; weight [C_out, C_in/groups, kH, kW].
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Int2 kernel_size, Conv2dOptions opt = {});
  Tensor forward(const Tensor& x) override;
  const Conv2dOptions& options() const { return opt_; }

  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  int64_t in_channels_;
  Conv2dOptions opt_;
};

}  // namespace shallow::nn
