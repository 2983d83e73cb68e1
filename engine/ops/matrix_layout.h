#pragma once
// How a GEMM kernel can read a tensor's matrices in place, shared by the f32/f64 and bf16 matmul
// paths: the layout of the last two dims and one stride for the broadcast batch dims.
#include <optional>

#include "engine/tensor.h"

namespace shallow {

// The last two dims as the kernel reads them: transposed or not, with row stride `ld`.
struct MatLayout {
  bool trans = false;
  int64_t ld = 0;
};

// nullopt when neither of the last two dims has unit stride (the caller makes it contiguous).
std::optional<MatLayout> mat_layout(const Tensor& t);

// The first `batch_dims` dims of an expanded operand as one stride, when they collapse to a
// single run (a stride of 0 reuses one matrix); nullopt otherwise.
std::optional<int64_t> batch_stride(const Tensor& t, int64_t batch_dims);

}  // namespace shallow
