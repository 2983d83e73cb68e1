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
  // In the input's dtype from the start, as batch_norm converts the statistics before it
  // computes with them.
  auto as_input = [&](const Tensor& t) { return t.defined() ? t.detach().to(x.dtype()) : t; };
  auto [scale, shift] = batch_norm_eval_affine(as_input(bn.running_mean), as_input(bn.running_var),
                                               as_input(bn.weight), as_input(bn.bias), bn.eps());
  // The convolution's own bias moves through the batch norm: (s + b) * scale + shift.
  if (conv.bias.defined()) shift = add(shift, mul(as_input(conv.bias), scale));
  const Conv2dOptions& o = conv.options();
  return conv2d_affine(x, conv.weight, scale, shift, residual, relu_after, o.stride, o.padding,
                       o.dilation, o.groups);
}

}  // namespace shallow::nn
