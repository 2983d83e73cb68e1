#pragma once
// 2-D pooling on contiguous [planes, H, W] arrays (planes = N * C), and its gradients, with
// PyTorch's window rules.
#include <cstdint>

namespace shallow::cpu {

// Output length of a pooling window sweep, as PyTorch computes it: with ceil_mode the last
// window may hang over the end, but must start inside the input or its left padding.
inline int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                                int64_t dilation, bool ceil_mode) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  if (span < 0) return 0;  // the window does not fit; the ops report it
  int64_t out = (span + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

struct Pool2dShape {
  int64_t planes = 1, H = 1, W = 1, H_out = 1, W_out = 1;
  int64_t kH = 1, kW = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;  // max pooling only
};

// Mean over each window. count_include_pad divides by the window clipped to the padded input;
// otherwise by the number of real input elements in it.
template <class T>
void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const T* gy, T* gx);

// Max over each (dilated) window; argmax receives the position h * W + w of the first largest
// element (a NaN counts as the largest), where the backward sends the gradient.
template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int64_t* argmax);
template <class T>
void max_pool2d_backward(const Pool2dShape& s, const T* gy, const int64_t* argmax, T* gx);

// Output cell o of n_out averages inputs [floor(o * n_in / n_out), ceil((o + 1) * n_in / n_out)).
template <class T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                 int64_t W_out, const T* x, T* y);
template <class T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                  int64_t W_out, const T* gy, T* gx);

}  // namespace shallow::cpu
