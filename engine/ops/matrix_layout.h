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

// The operands of a [..., M, K] @ b [..., K, N] (both at least 2-D), their batch dims broadcast,
// each readable in place by a GEMM (copied to contiguous only where it is not).
struct MatmulOperands {
  int64_t M = 0, N = 0, K = 0;
  int64_t batches = 1;   // the product of the broadcast batch dims
  Shape out_shape;       // [...batch, M, N]
  Tensor a, b;           // detached, expanded to the batch
  MatLayout la, lb;
  int64_t batch_stride_a = 0, batch_stride_b = 0;

  // Makes `a` (or `b`) contiguous and reads its layout again.
  void make_a_contiguous();
  void make_b_contiguous();
};

// Throws, naming both shapes, when the inner dims differ or the batch dims do not broadcast.
MatmulOperands matmul_operands(const Tensor& a, const Tensor& b);

}  // namespace shallow
