#pragma once
#include <optional>

#include "engine/tensor.h"

namespace shallow {

// torch.matmul: 1-D operands are promoted (and the added dim removed after), batch dims
// broadcast. No copies for transposed views: the kernel reads them in place.
Tensor matmul(const Tensor& a, const Tensor& b);

// y = x W^T + b, x [..., in], W [out, in], b [out] (optional), as torch.nn.functional.linear.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

enum class LinearAct { none, relu, gelu, gelu_tanh, quick_gelu };

// act(linear(x, weight, bias)); gelu is the erf form, gelu_tanh torch's approximate='tanh',
// quick_gelu x * sigmoid(1.702 x). For inference on the CPU the bias and the activation are
// fused into the matrix product (one pass over the output); with a gradient to record it is
// linear followed by the activation op, with their backwards.
Tensor linear_act(const Tensor& x, const Tensor& weight, const Tensor& bias, LinearAct act);

}  // namespace shallow
