// Batch norm kernels. Statistics and gradients: one block per channel walks the channel's
// N * S values (a block sum in double); the apply is elementwise.
#include "kernels/cuda/batch_norm.h"

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

constexpr int kChannelThreads = 512;

// The channel's values are N runs of S, one per sample: value j of the channel is at
// x[(j / S * C + c) * S + j % S].
__device__ inline int64_t channel_index(int64_t j, int64_t c, int64_t C, int64_t S) {
  const int64_t n = j / S;
  return (n * C + c) * S + (j - n * S);
}

template <class T>
__global__ void __launch_bounds__(kChannelThreads)
    stats_kernel(int64_t N, int64_t C, int64_t S, const T* x, T* mean, T* var) {
  __shared__ double scratch[32];
  const int64_t c = blockIdx.x, count = N * S;
  double s = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) s += double(x[channel_index(j, c, C, S)]);
  const double m = block_sum(s, scratch) / double(count);
  double ss = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const double d = double(x[channel_index(j, c, C, S)]) - m;
    ss += d * d;
  }
  ss = block_sum(ss, scratch);
  if (threadIdx.x == 0) {
    mean[c] = T(m);
    var[c] = T(ss / double(count));
  }
}

template <class T>
__global__ void apply_kernel(int64_t N, int64_t C, int64_t S, const T* x, const T* mean,
                             const T* invstd, const T* weight, const T* bias, T* y) {
  const int64_t total = N * C * S;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t c = (i / S) % C;
    const T scale = invstd[c] * (weight ? weight[c] : T(1));
    const T shift = (bias ? bias[c] : T(0)) - mean[c] * scale;
    y[i] = x[i] * scale + shift;
  }
}

// The same arithmetic as the CPU's batch_norm_backward, channel by channel.
template <class T>
__global__ void __launch_bounds__(kChannelThreads)
    backward_kernel(int64_t N, int64_t C, int64_t S, const T* x, const T* mean, const T* invstd,
                    const T* weight, const T* gy, bool batch_stats, T* gx, T* gweight, T* gbias) {
  __shared__ double scratch[32];
  const int64_t c = blockIdx.x, count = N * S;
  const T mu = mean[c], is = invstd[c];
  double sum_g = 0, sum_g_xhat = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t i = channel_index(j, c, C, S);
    sum_g += double(gy[i]);
    sum_g_xhat += double(gy[i]) * (double(x[i]) - double(mu));
  }
  sum_g = block_sum(sum_g, scratch);
  sum_g_xhat = block_sum(sum_g_xhat, scratch) * double(is);
  if (threadIdx.x == 0) {
    if (gweight) gweight[c] = T(sum_g_xhat);
    if (gbias) gbias[c] = T(sum_g);
  }
  if (!gx) return;
  const T w_is = (weight ? weight[c] : T(1)) * is;
  const T a = batch_stats ? T(sum_g / double(count)) : T(0);
  const T b = batch_stats ? T(sum_g_xhat / double(count)) * is : T(0);
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t i = channel_index(j, c, C, S);
    gx[i] = w_is * (gy[i] - a - (x[i] - mu) * b);
  }
}

Status too_many_channels(int64_t C) {
  return C > 2147483647 ? Status{"batch_norm", "more than 2^31 - 1 channels"} : ok_status();
}

}  // namespace

template <class T>
Status batch_norm_stats(int64_t N, int64_t C, int64_t S, const T* x, T* mean, T* var,
                        cudaStream_t stream) {
  if (C == 0 || N * S == 0) return ok_status();
  if (Status st = too_many_channels(C); !st.ok()) return st;
  stats_kernel<T><<<unsigned(C), kChannelThreads, 0, stream>>>(N, C, S, x, mean, var);
  return launch_status("batch_norm stats_kernel");
}

template <class T>
Status batch_norm_apply(int64_t N, int64_t C, int64_t S, const T* x, const T* mean,
                        const T* invstd, const T* weight, const T* bias, T* y,
                        cudaStream_t stream) {
  const int64_t total = N * C * S;
  if (total == 0) return ok_status();
  apply_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(N, C, S, x, mean, invstd, weight,
                                                               bias, y);
  return launch_status("batch_norm apply_kernel");
}

template <class T>
Status batch_norm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* mean,
                           const T* invstd, const T* weight, const T* gy, bool batch_stats, T* gx,
                           T* gweight, T* gbias, cudaStream_t stream) {
  if (C == 0) return ok_status();
  if (Status st = too_many_channels(C); !st.ok()) return st;
  backward_kernel<T><<<unsigned(C), kChannelThreads, 0, stream>>>(
      N, C, S, x, mean, invstd, weight, gy, batch_stats, gx, gweight, gbias);
  return launch_status("batch_norm backward_kernel");
}

#define SH_INSTANTIATE(T)                                                                        \
  template Status batch_norm_stats<T>(int64_t, int64_t, int64_t, const T*, T*, T*, cudaStream_t); \
  template Status batch_norm_apply<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*,  \
                                      const T*, const T*, T*, cudaStream_t);                    \
  template Status batch_norm_backward<T>(int64_t, int64_t, int64_t, const T*, const T*,         \
                                         const T*, const T*, const T*, bool, T*, T*, T*,        \
                                         cudaStream_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cuda
