#pragma once
// 2-D convolution (cross-correlation, as PyTorch) on contiguous NCHW arrays, and its gradients.
//   x [N, C_in, H, W], w [C_out, C_in/groups, kH, kW], b [C_out], y [N, C_out, H_out, W_out]
// Each call picks one of these paths by shape (conv2d_path says which):
//   columns    the column matrix of an image is the image itself (1x1, or a kernel covering the
//              full height; stride 1 along W, no padding), it has at most 512 positions and
//              there are at most 64 output channels (the EEG encoders'): register tiles read
//              the input and the weight in place, with no im2col and no GEMM packing, each
//              thread taking whole images (conv_columns.cpp);
//   rows       at most 8 input rows per output row (C_in * kH), kW > 1, and stride 1 and no
//              dilation along W: each output row is a sliding dot product of its input rows
//              with the kW taps, the taps' offsets standing for the column matrix (EEGNet's
//              padded temporal kernel too; conv_rows.cpp; its input gradient takes the
//              generic path);
//   depthwise  one input channel per group: a direct loop, where im2col would make a GEMM
//              with K = kH*kW only;
//   implicit_gemm  every other shape with groups == 1, stride 1 along W and output rows of 5
//              or more (a ResNet's convolutions): one GEMM over the whole batch, its column matrix packed straight
//              from the input, with no im2col (conv_gemm.cpp); forward only, the gradients
//              take the generic path;
//   generic    everything else (other groups, stride along W), and every gradient the paths
//              above leave: im2col (skipped when the input is its own column matrix) and the
//              GEMM, per image and group.
// columns, rows and implicit_gemm take groups == 1 only, and need AVX-512 to pay: without it
// those shapes take the generic path.
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

enum class Conv2dPath { generic, depthwise, columns, rows, implicit_gemm };

// The path conv2d_forward/backward take for this shape.
Conv2dPath conv2d_path(const Conv2dShape& s);
const char* conv2d_path_name(Conv2dPath p);

// y = conv(x, w) + b; b may be null.
template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y);

// What the forward applies to each output once its sum is complete, per output channel c:
//   y = act(sum * scale[c] + shift[c] + residual)
// A null scale is 1, a null shift 0, a null residual 0; the residual has y's shape and layout.
// A batch norm in evaluation is such a scale and shift (PyTorch folds it the same way).
template <class T>
struct ConvEpilogue {
  const T* scale = nullptr;
  const T* shift = nullptr;
  const T* residual = nullptr;
  bool relu = false;  // max(v, 0), NaN kept
};

// y = epilogue(conv(x, w)): on the implicit_gemm path applied to each register tile while it
// is in cache; on the others in one pass over y after the convolution.
template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const ConvEpilogue<T>& ep,
                    T* y);

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
