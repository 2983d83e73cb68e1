#include "kernels/cuda/loss.h"

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// The largest value over the block, returned to every thread. A NaN wins here (the CPU's
// std::max skips it instead); either way a NaN in a row makes its sum, lse and loss NaN.
template <class T>
__device__ inline T block_max(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  for (int offset = 16; offset > 0; offset >>= 1) {
    const T o = __shfl_xor_sync(0xffffffffu, v, offset);
    v = (o > v || o != o) ? o : v;
  }
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T m = lane < warps ? scratch[lane] : -d_inf<T>();
  for (int offset = 16; offset > 0; offset >>= 1) {
    const T o = __shfl_xor_sync(0xffffffffu, m, offset);
    m = (o > m || o != o) ? o : m;
  }
  return m;
}

template <class T>
__global__ void cross_entropy_kernel(int64_t rows, int64_t classes, const T* __restrict__ logits,
                                     const int64_t* __restrict__ target, T s, T s_per_class,
                                     T* __restrict__ loss, T* __restrict__ lse) {
  __shared__ T scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* x = logits + r * classes;
    T mx = -d_inf<T>();
    for (int64_t j = threadIdx.x; j < classes; j += blockDim.x)
      mx = (x[j] > mx || x[j] != x[j]) ? x[j] : mx;
    mx = block_max(mx, scratch);
    T total = 0, sum_x = 0;
    for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) {
      total += d_exp(x[j] - mx);
      sum_x += x[j];
    }
    total = block_sum(total, scratch);
    sum_x = block_sum(sum_x, scratch);
    if (threadIdx.x == 0) {
      const T l = mx + d_log(total);
      lse[r] = l;
      // As on the CPU: s = 0 never touches sum_x (which may be -inf).
      T value = (T(1) - s) * (l - x[target[r]]);
      if (s != T(0)) value += s_per_class * (T(classes) * l - sum_x);
      loss[r] = value;
    }
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(int64_t rows, int64_t classes,
                                              const T* __restrict__ logits,
                                              const int64_t* __restrict__ target, T s,
                                              T s_per_class, const T* __restrict__ lse,
                                              const T* __restrict__ row_scale, T* __restrict__ gx) {
  const int64_t n = rows * classes;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    const int64_t r = i / classes, j = i % classes;
    const T scale = row_scale[r];
    T g = scale * (d_exp(logits[i] - lse[r]) - s_per_class);
    if (j == target[r]) g -= scale * (T(1) - s);
    gx[i] = g;
  }
}

// Threads per row block: a warp for short rows, up to 256 for long ones.
int row_threads(int64_t classes) {
  int t = 32;
  while (t < kThreads && t < classes) t *= 2;
  return t;
}

}  // namespace

template <class T>
Status cross_entropy(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                     double smoothing, T* loss, T* lse, cudaStream_t stream) {
  if (rows <= 0 || classes <= 0) return ok_status();
  const unsigned blocks = unsigned(rows < 65536 ? rows : 65536);
  cross_entropy_kernel<T><<<blocks, row_threads(classes), 0, stream>>>(
      rows, classes, logits, target, T(smoothing), T(smoothing / double(classes)), loss, lse);
  return launch_status("cross_entropy_kernel");
}

template <class T>
Status cross_entropy_backward(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                              double smoothing, const T* lse, const T* row_scale, T* gx,
                              cudaStream_t stream) {
  const int64_t n = rows * classes;
  if (n <= 0) return ok_status();
  cross_entropy_backward_kernel<T>
      <<<blocks_for(n), kThreads, 0, stream>>>(rows, classes, logits, target, T(smoothing),
                                               T(smoothing / double(classes)), lse, row_scale, gx);
  return launch_status("cross_entropy_backward_kernel");
}

#define SH_INSTANTIATE(T)                                                                       \
  template Status cross_entropy<T>(int64_t, int64_t, const T*, const int64_t*, double, T*, T*,  \
                                   cudaStream_t);                                               \
  template Status cross_entropy_backward<T>(int64_t, int64_t, const T*, const int64_t*, double, \
                                            const T*, const T*, T*, cudaStream_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cuda
