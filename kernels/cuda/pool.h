#pragma once
// 2-D pooling on CUDA, the twin of kernels/cpu/pool.h: contiguous [planes, H, W] device arrays,
// PyTorch's window rules. Every backward gathers (one thread per input element adds up the
// outputs whose windows hold it), so nothing is written twice and no atomics are needed: the
// results do not depend on timing.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/pool.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

using cpu::Pool2dShape;

template <class T>
Status avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, const T* x, T* y,
                          cudaStream_t stream);
template <class T>
Status avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const T* gy, T* gx,
                           cudaStream_t stream);

// argmax: the position h * W + w of the window's first largest element (a NaN counts as the
// largest), -1 for a window with no input element.
template <class T>
Status max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int64_t* argmax,
                          cudaStream_t stream);
template <class T>
Status max_pool2d_backward(const Pool2dShape& s, const T* gy, const int64_t* argmax, T* gx,
                           cudaStream_t stream);

template <class T>
Status adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                   int64_t W_out, const T* x, T* y, cudaStream_t stream);
template <class T>
Status adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                    int64_t W_out, const T* gy, T* gx, cudaStream_t stream);

}  // namespace shallow::cuda
