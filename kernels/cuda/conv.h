#pragma once
// 2-D convolution on CUDA, the twin of kernels/cpu/conv.h (same shapes, same NCHW layout,
// contiguous device arrays), written as implicit GEMMs: the column matrix of im2col is never
// stored; each tile of it is gathered from the input straight into shared memory.
//   forward          rows = output pixels (N * H_out * W_out), cols = output channels of a
//                    group, depth = input channels of the group x kH x kW
//   backward input   the transposed convolution in the same scheme: rows = input pixels,
//                    cols = input channels of a group, depth = output channels x kH x kW
//   backward weight  rows = output channels, cols = input channels x kH x kW, and the long
//                    reduction over (batch x output pixels) split across blocks whose partial
//                    sums are added in a fixed order (the result does not depend on timing)
// Depthwise convolutions (one input channel per group, several groups) use direct kernels, as
// on the CPU: their GEMMs would be a few columns wide.
// float, double and bf16 (bf16 is widened to float as it is loaded, summed in float and rounded
// once when stored, so it gives the CPU's f32 result rounded to bf16, up to the order of the
// sums). Every function queues its work on `stream` and returns at once.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/conv.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

using cpu::Conv2dShape;

// y = conv(x, w) + b; b may be null.
template <class T>
Status conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y,
                      cudaStream_t stream);

// y[n, c, p] += b[c] (for a convolution computed without its bias, as cuDNN's is).
template <class T>
Status conv2d_add_bias(const Conv2dShape& s, const T* b, T* y, cudaStream_t stream);

// gx = d(loss)/dx from gy (overwrites gx).
template <class T>
Status conv2d_backward_input(const Conv2dShape& s, const T* gy, const T* w, T* gx,
                             cudaStream_t stream);

// Scratch (device memory, any alignment of a cudaMalloc'd block) that the weight and bias
// gradients need for their partial sums. The size depends on the current device's number of
// multiprocessors: ask on the device that will run the call.
template <class T>
size_t conv2d_backward_weight_scratch_bytes(const Conv2dShape& s);
template <class T>
size_t conv2d_backward_bias_scratch_bytes(const Conv2dShape& s);

// gw = d(loss)/dw from gy and x (overwrites gw).
template <class T>
Status conv2d_backward_weight(const Conv2dShape& s, const T* gy, const T* x, T* gw, void* scratch,
                              size_t scratch_bytes, cudaStream_t stream);

// gb[c] = sum of gy over n, h, w (overwrites gb).
template <class T>
Status conv2d_backward_bias(const Conv2dShape& s, const T* gy, T* gb, void* scratch,
                            size_t scratch_bytes, cudaStream_t stream);

}  // namespace shallow::cuda
