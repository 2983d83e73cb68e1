#pragma once
// Losses with PyTorch's reductions: "mean" (default), "sum" or "none".
#include <string>

#include "engine/tensor.h"

namespace shallow {

// logits [N, C] (or [C]), target i64 class indices [N] (or []); label smoothing as
// torch.nn.functional.cross_entropy: the target distribution is (1-s) one-hot + s/C.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0,
                     const std::string& reduction = "mean");
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");

}  // namespace shallow
