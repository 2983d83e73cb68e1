#pragma once
// 2-D convolution (cross-correlation, as PyTorch) on contiguous NCHW arrays, and its gradients.
//   x [N, C_in, H, W], w [C_out, C_in/groups, kH, kW], b [C_out], y [N, C_out, H_out, W_out]
// Grouped and dense convolutions go through im2col and the GEMM; depthwise ones (one input
// channel per group) use a direct loop, where im2col would make a GEMM with K = kH*kW only.
#include <cstdint>

namespace shallow::cpu {

struct Conv2dShape {
  int64_t N = 1, C_in = 1, H = 1, W = 1;
  int64_t C_out = 1, kH = 1, kW = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t groups = 1;

  int64_t H_out() const { return (H + 2 * pad_h - dil_h * (kH - 1) - 1) / stride_h + 1; }
  int64_t W_out() const { return (W + 2 * pad_w - dil_w * (kW - 1) - 1) / stride_w + 1; }
};

// y = conv(x, w) + b; b may be null.
template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y);

// gx = d(loss)/dx from gy (overwrites gx).
template <class T>
void conv2d_backward_input(const Conv2dShape& s, const T* gy, const T* w, T* gx);

// gw = d(loss)/dw from gy and x (overwrites gw).
template <class T>
void conv2d_backward_weight(const Conv2dShape& s, const T* gy, const T* x, T* gw);

// gb[c] = sum of gy over n, h, w (overwrites gb).
template <class T>
void conv2d_backward_bias(const Conv2dShape& s, const T* gy, T* gb);

}  // namespace shallow::cpu
