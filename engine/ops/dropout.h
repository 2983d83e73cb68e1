#pragma once
// Dropout draws from a counter-based generator: the same seed gives the same mask on any
// thread count (and on the GPU).
#include "engine/random.h"
#include "engine/tensor.h"

namespace shallow {

// Zeroes each element with probability p and scales the rest by 1/(1-p); identity unless training.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);
// Zeroes whole channels (dim 1 of [N, C, ...]) with probability p, as torch's Dropout2d.
Tensor dropout2d(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace shallow
