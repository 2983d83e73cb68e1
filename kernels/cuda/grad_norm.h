#pragma once
// The pieces of clip_grad_norm_ on device arrays: the CUDA twins of cpu::sum_abs_pow,
// cpu::max_abs and cpu::scale_inplace (kernels/cpu/optim.h). A norm is left in device memory,
// so that the norms of many gradients can be read back to the host in one copy.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

// Doubles of device scratch that abs_pow_sum needs (one partial result per block).
constexpr int kNormPartials = 1024;

// *out = sum of |x|^p (p finite, > 0) or, with p = infinity, max |x| (NaN propagates), over
// x[0, n), in double. Two kernels: fixed partial sums per block into `partials`, then one
// block sums them in order, so the result does not change from run to run. `out` and
// `partials` are device pointers.
template <class T>
Status abs_pow_sum(int64_t n, const T* x, double p, double* partials, double* out,
                   cudaStream_t stream);

// x *= s, s rounded to T first.
template <class T>
Status scale_inplace(int64_t n, T* x, double s, cudaStream_t stream);

}  // namespace shallow::cuda
