#pragma once
#include <utility>

#include "engine/tensor.h"

namespace shallow {

// Normalizes over the last normalized_shape.size() dims; weight/bias optional (of that shape).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// x [N, C, ...]. In training, normalizes with the batch statistics and updates running_mean and
// running_var in place (momentum as PyTorch; running_var uses the unbiased variance) when they
// are given; in eval, uses the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);

// A batch norm in evaluation as a per-channel affine map, y = x * scale + shift, computed as
// batch_norm computes it: scale = weight / sqrt(running_var + eps), shift = bias -
// running_mean * scale (weight and bias may be undefined: 1 and 0). For conv2d_affine.
std::pair<Tensor, Tensor> batch_norm_eval_affine(const Tensor& running_mean,
                                                 const Tensor& running_var, const Tensor& weight,
                                                 const Tensor& bias, double eps = 1e-5);

// x / max(||x||_2, eps) along dim, as torch.nn.functional.normalize.
Tensor l2_normalize(const Tensor& x, int64_t dim = -1, double eps = 1e-12);

}  // namespace shallow
