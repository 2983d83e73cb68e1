#include "engine/nn/layer_norm.h"

#include "engine/ops/norm.h"

namespace shallow::nn {

LayerNorm::LayerNorm(Shape normalized_shape, double eps, bool elementwise_affine, bool with_bias,
                     DType dtype)
    : Module("LayerNorm"), normalized_shape_(std::move(normalized_shape)), eps_(eps) {
  SH_CHECK(!normalized_shape_.empty() && shape_numel(normalized_shape_) > 0,
           "LayerNorm: normalized_shape must be non-empty, got ", shape_str(normalized_shape_));
  if (elementwise_affine) {
    weight = register_parameter("weight", Tensor::ones(normalized_shape_, dtype));
    if (with_bias) bias = register_parameter("bias", Tensor::zeros(normalized_shape_, dtype));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  const int64_t k = int64_t(normalized_shape_.size());
  bool ok = x.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i)
    ok = x.size(x.dim() - k + i) == normalized_shape_[size_t(i)];
  SH_CHECK(ok, "LayerNorm", shape_str(normalized_shape_), ": input of shape ", shape_str(x.shape()),
           " does not end with the normalized shape");
  return layer_norm(x, normalized_shape_, weight, bias, eps_);
}

}  // namespace shallow::nn
