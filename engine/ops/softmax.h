#pragma once
#include "engine/tensor.h"

namespace shallow {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace shallow
