#include "kernels/cuda/grad_norm.h"

#include <cmath>

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

constexpr int kPartialThreads = 1024;  // the second pass: one block, one partial per thread

__device__ inline double max_nan(double a, double b) { return (b > a || b != b) ? b : a; }

// Sum (or max) over the block, returned to every thread. `scratch` holds 32 values.
__device__ inline double block_combine(double v, bool is_max, double* scratch) {
  if (!is_max) return block_sum(v, scratch);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  for (int offset = 16; offset > 0; offset >>= 1)
    v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, offset));
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double m = lane < warps ? scratch[lane] : 0.0;
  for (int offset = 16; offset > 0; offset >>= 1)
    m = max_nan(m, __shfl_xor_sync(0xffffffffu, m, offset));
  return m;
}

template <class T>
__global__ void abs_pow_partials_kernel(int64_t n, const T* __restrict__ x, double p, bool is_max,
                                        double* __restrict__ partials) {
  __shared__ double scratch[32];
  double acc = 0;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    const double a = fabs(double(x[i]));
    if (is_max)
      acc = max_nan(acc, a);
    else if (p == 2.0)
      acc += a * a;
    else if (p == 1.0)
      acc += a;
    else
      acc += pow(a, p);
  }
  acc = block_combine(acc, is_max, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void combine_partials_kernel(int count, const double* __restrict__ partials, bool is_max,
                                        double* __restrict__ out) {
  __shared__ double scratch[32];
  const double v = int(threadIdx.x) < count ? partials[threadIdx.x] : 0.0;
  const double total = block_combine(v, is_max, scratch);
  if (threadIdx.x == 0) *out = total;
}

template <class T>
__global__ void scale_kernel(int64_t n, T* __restrict__ x, T s) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) x[i] = x[i] * s;
}

}  // namespace

template <class T>
Status abs_pow_sum(int64_t n, const T* x, double p, double* partials, double* out,
                   cudaStream_t stream) {
  const bool is_max = std::isinf(p);
  unsigned blocks = n > 0 ? blocks_for(n) : 1u;
  if (blocks > unsigned(kNormPartials)) blocks = unsigned(kNormPartials);
  static_assert(kNormPartials <= kPartialThreads, "one thread per partial in the second pass");
  // n == 0 still runs: each thread adds nothing, and the result 0 is written.
  abs_pow_partials_kernel<T><<<blocks, kThreads, 0, stream>>>(n, x, p, is_max, partials);
  Status s = launch_status("abs_pow_partials_kernel");
  if (!s.ok()) return s;
  combine_partials_kernel<<<1, kPartialThreads, 0, stream>>>(int(blocks), partials, is_max, out);
  return launch_status("combine_partials_kernel");
}

template <class T>
Status scale_inplace(int64_t n, T* x, double s, cudaStream_t stream) {
  if (n <= 0) return ok_status();
  scale_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(n, x, T(s));
  return launch_status("scale_kernel");
}

template Status abs_pow_sum<float>(int64_t, const float*, double, double*, double*, cudaStream_t);
template Status abs_pow_sum<double>(int64_t, const double*, double, double*, double*, cudaStream_t);
template Status scale_inplace<float>(int64_t, float*, double, cudaStream_t);
template Status scale_inplace<double>(int64_t, double*, double, cudaStream_t);

}  // namespace shallow::cuda
