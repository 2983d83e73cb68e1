#pragma once
// Convolution and pooling on NCHW (and NCL) tensors, with PyTorch's argument meanings.
#include <array>

#include "engine/tensor.h"

namespace shallow {

using Int2 = std::array<int64_t, 2>;

// x [N, C_in, H, W], weight [C_out, C_in/groups, kH, kW], bias [C_out] (optional).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              Int2 stride = {1, 1}, Int2 padding = {0, 0}, Int2 dilation = {1, 1},
              int64_t groups = 1);
// Inference: act(conv2d(x, weight) * scale + shift + residual), scale and shift [C_out] per
// output channel (a batch norm in evaluation: batch_norm_eval_affine gives them; either may be
// undefined: 1 and 0), residual (optional) of the output's shape, the ReLU (when asked) last.
// On the CPU in f32 and f64 the convolution applies all of it as it writes its output; on other
// devices and dtypes, and wherever a gradient is to be recorded, the same ops run in turn.
Tensor conv2d_affine(const Tensor& x, const Tensor& weight, const Tensor& scale,
                     const Tensor& shift, const Tensor& residual, bool relu, Int2 stride = {1, 1},
                     Int2 padding = {0, 0}, Int2 dilation = {1, 1}, int64_t groups = 1);
// x [N, C_in, L], weight [C_out, C_in/groups, k].
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);

// stride {0, 0} means "equal to the kernel", as PyTorch's default.
Tensor avg_pool2d(const Tensor& x, Int2 kernel, Int2 stride = {0, 0}, Int2 padding = {0, 0},
                  bool ceil_mode = false, bool count_include_pad = true);
Tensor max_pool2d(const Tensor& x, Int2 kernel, Int2 stride = {0, 0}, Int2 padding = {0, 0},
                  Int2 dilation = {1, 1}, bool ceil_mode = false);
Tensor adaptive_avg_pool2d(const Tensor& x, Int2 output_size);

}  // namespace shallow
