#pragma once
#include "engine/nn/module.h"

namespace shallow::nn {

// Normalizes over the trailing normalized_shape dims; weight (ones) and bias (zeros) of that
// shape when elementwise_affine, as torch.nn.LayerNorm.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     bool bias = true, DType dtype = DType::f32);
  explicit LayerNorm(int64_t dim, double eps = 1e-5) : LayerNorm(Shape{dim}, eps) {}
  Tensor forward(const Tensor& x) override;

  Tensor weight;  // undefined without elementwise_affine
  Tensor bias;    // undefined without elementwise_affine or bias

 private:
  Shape normalized_shape_;
  double eps_;
};

}  // namespace shallow::nn
