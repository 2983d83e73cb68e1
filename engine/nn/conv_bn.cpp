#include "engine/nn/conv_bn.h"

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/norm.h"

namespace shallow::nn {

Tensor conv_bn(Conv2d& conv, BatchNormBase& bn, const Tensor& x, bool relu_after,
               const Tensor& residual) {
  const bool learning = needs_record({&x, &conv.weight, &conv.bias, &bn.weight, &bn.bias, &residual});
  const bool foldable = bn.uses_running_stats() && !learning && x.device().is_cpu() &&
                        (x.dtype() == DType::f32 || x.dtype() == DType::f64);
  if (!foldable) {
    Tensor y = bn.forward(conv.forward(x));
    if (residual.defined()) y = add(y, residual);
    return relu_after ? relu(y) : y;
  }
  auto [scale, shift] = batch_norm_eval_affine(bn.running_mean, bn.running_var, bn.weight,
                                               bn.bias, bn.eps());
  // The convolution's own bias moves through the batch norm: (s + b) * scale + shift.
  if (conv.bias.defined()) shift = add(shift, mul(conv.bias.detach().to(scale.dtype()), scale));
  const Conv2dOptions& o = conv.options();
  return conv2d_affine(x, conv.weight, scale.to(x.dtype()), shift.to(x.dtype()), residual,
                       relu_after, o.stride, o.padding, o.dilation, o.groups);
}

}  // namespace shallow::nn
