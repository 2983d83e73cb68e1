#pragma once
// A Conv2d followed by a BatchNorm2d, then optionally a residual added and a ReLU: a ResNet's
// unit. Where the batch norm uses its running statistics and nothing needs a gradient, one
// conv2d_affine call with the batch norm folded in (the convolution applies it, the residual
// and the ReLU as it writes its output); otherwise the modules' forwards and the ops in turn.
#include "engine/nn/batch_norm.h"
#include "engine/nn/conv.h"

namespace shallow::nn {

Tensor conv_bn(Conv2d& conv, BatchNormBase& bn, const Tensor& x, bool relu,
               const Tensor& residual = Tensor());

}  // namespace shallow::nn
