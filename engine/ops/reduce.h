#pragma once
// Reductions over a set of dims (empty = all dims), with keepdim like PyTorch.
#include <vector>

#include "engine/tensor.h"

namespace shallow {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Largest value (amax): on ties the gradient is shared evenly, as torch.amax.
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1), as torch.var.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
// Index of the largest value along one dim (first on ties), as i64.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// Sums a broadcast gradient back down to `shape` (the inverse of expand).
Tensor sum_to_shape(const Tensor& x, const Shape& shape);

}  // namespace shallow
