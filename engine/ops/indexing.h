#pragma once
#include <vector>

#include "engine/tensor.h"

namespace shallow {

Tensor concat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Pieces of split_size along dim (the last may be smaller), as torch.split; views of x.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);

// index: i64 (or i32) 1-D; rows of x along dim, in index order.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out[i][j] = x[index[i][j]][j] for dim 0 (and so on), as torch.gather.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// weight [num, dim]; indices any shape of i64/i32 -> [..., dim].
Tensor embedding(const Tensor& weight, const Tensor& indices);

// cond: u8 or a float mask (nonzero = true), broadcast with a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

}  // namespace shallow
