#pragma once
#include <optional>

#include "engine/tensor.h"

namespace shallow {

// torch.matmul: 1-D operands are promoted (and the added dim removed after), batch dims
// broadcast. No copies for transposed views: the kernel reads them in place.
Tensor matmul(const Tensor& a, const Tensor& b);

// y = x W^T + b, x [..., in], W [out, in], b [out] (optional), as torch.nn.functional.linear.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace shallow
