// Batch norm kernels. Sums per channel: blocks (channel, split) each sum a contiguous share of
// the channel's values into a partial (double), and one thread per channel adds the partials in
// order and finishes with the CPU's arithmetic. Apply and the input gradient are elementwise.
#include "kernels/cuda/batch_norm.h"

#include <algorithm>
#include <climits>
#include <string>

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// Value j of channel c (j < N * S) is at x[(j / S * C + c) * S + j % S]: N runs of S.
__device__ inline int64_t channel_index(int64_t j, int64_t c, int64_t C, int64_t S) {
  const int64_t n = j / S;
  return (n * C + c) * S + (j - n * S);
}

// Blocks per channel: about four blocks per multiprocessor in all, each with at least 4096
// values, within a grid dimension's limit.
int64_t splits_for(int64_t N, int64_t C, int64_t S) {
  const int64_t count = N * S;
  const int64_t want = (4 * int64_t(multiprocessors()) + C - 1) / std::max<int64_t>(C, 1);
  const int64_t most = std::max<int64_t>(1, count / 4096);
  return std::clamp<int64_t>(std::min(want, most), 1, 65535);
}

// The scratch, in doubles: two partial sums per (channel, split), then the mean per channel.
struct Scratch {
  double* part_a;  // [C][splits]
  double* part_b;  // [C][splits]
  double* mean;    // [C]
};
Scratch carve(void* p, int64_t C, int64_t splits) {
  double* d = static_cast<double*>(p);
  return {d, d + C * splits, d + 2 * C * splits};
}

enum class Sums { values, squared_deviations, gradients };

// Block (c = blockIdx.x, split = blockIdx.y) sums its share of channel c:
//   values:             a = sum x
//   squared_deviations: a = sum (x - mean_d[c])^2
//   gradients:          a = sum gy,  b = sum gy * (x - mean[c])
template <Sums kind, class T>
__global__ void partial_sums_kernel(int64_t N, int64_t C, int64_t S, const T* x, const T* gy,
                                    const T* mean, Scratch sc, int64_t per_split) {
  __shared__ double scratch[32];
  const int64_t c = blockIdx.x, splits = gridDim.y;
  const int64_t begin = int64_t(blockIdx.y) * per_split, end = min(N * S, begin + per_split);
  double a = 0, b = 0;
  double center = 0;
  if constexpr (kind == Sums::squared_deviations) center = sc.mean[c];
  if constexpr (kind == Sums::gradients) center = double(mean[c]);
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const int64_t i = channel_index(j, c, C, S);
    if constexpr (kind == Sums::values) {
      a += double(x[i]);
    } else if constexpr (kind == Sums::squared_deviations) {
      const double d = double(x[i]) - center;
      a += d * d;
    } else {
      a += double(gy[i]);
      b += double(gy[i]) * (double(x[i]) - center);
    }
  }
  a = block_sum(a, scratch);
  if constexpr (kind == Sums::gradients) b = block_sum(b, scratch);
  if (threadIdx.x == 0) {
    sc.part_a[c * splits + blockIdx.y] = a;
    if constexpr (kind == Sums::gradients) sc.part_b[c * splits + blockIdx.y] = b;
  }
}

__device__ inline double add_partials(const double* part, int64_t c, int64_t splits) {
  double s = 0;
  for (int64_t k = 0; k < splits; ++k) s += part[c * splits + k];
  return s;
}

template <class T>
__global__ void finish_mean_kernel(int64_t C, int64_t count, int64_t splits, Scratch sc, T* mean) {
  for (int64_t c = global_thread(); c < C; c += grid_threads()) {
    const double m = add_partials(sc.part_a, c, splits) / double(count);
    sc.mean[c] = m;
    mean[c] = T(m);
  }
}

template <class T>
__global__ void finish_var_kernel(int64_t C, int64_t count, int64_t splits, Scratch sc, T* var) {
  for (int64_t c = global_thread(); c < C; c += grid_threads())
    var[c] = T(add_partials(sc.part_a, c, splits) / double(count));
}

// The per-channel end of the CPU's batch_norm_backward: the weight and bias gradients, and the
// coefficients of the input gradient gx = w_is * (gy - a - (x - mean) * b), kept as T in
// `coef` ([C][3]) so the elementwise pass computes in T as the CPU does.
template <class T>
__global__ void finish_gradients_kernel(int64_t C, int64_t count, int64_t splits, Scratch sc,
                                        const T* invstd, const T* weight, bool batch_stats,
                                        T* gweight, T* gbias, T* coef) {
  for (int64_t c = global_thread(); c < C; c += grid_threads()) {
    const T is = invstd[c];
    const double sum_g = add_partials(sc.part_a, c, splits);
    const double sum_g_xhat = add_partials(sc.part_b, c, splits) * double(is);
    if (gweight) gweight[c] = T(sum_g_xhat);
    if (gbias) gbias[c] = T(sum_g);
    coef[3 * c] = (weight ? weight[c] : T(1)) * is;
    coef[3 * c + 1] = batch_stats ? T(sum_g / double(count)) : T(0);
    coef[3 * c + 2] = batch_stats ? T(sum_g_xhat / double(count)) * is : T(0);
  }
}

template <class T>
__global__ void input_gradient_kernel(int64_t N, int64_t C, int64_t S, const T* x, const T* mean,
                                      const T* gy, const T* coef, T* gx) {
  const int64_t total = N * C * S;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t c = (i / S) % C;
    const T w_is = coef[3 * c], a = coef[3 * c + 1], b = coef[3 * c + 2];
    gx[i] = w_is * (gy[i] - a - (x[i] - mean[c]) * b);
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

// Checks the channel count against the grid and the scratch against what the shape needs.
Status check_launch(int64_t N, int64_t C, int64_t S, size_t scratch_bytes) {
  if (C > INT_MAX) return Status{"batch_norm", "more than 2^31 - 1 channels"};
  const size_t need = batch_norm_scratch_bytes(N, C, S);
  if (scratch_bytes < need)
    return Status{"batch_norm", "scratch of " + std::to_string(scratch_bytes) + " bytes, " +
                                    std::to_string(need) + " needed"};
  return ok_status();
}

}  // namespace

size_t batch_norm_scratch_bytes(int64_t N, int64_t C, int64_t S) {
  const int64_t splits = splits_for(N, C, S);
  // Partials and means in doubles, then the input gradient's coefficients (3 per channel, at
  // most 8 bytes each).
  return size_t(2 * C * splits + C) * sizeof(double) + size_t(3 * C) * sizeof(double);
}

template <class T>
Status batch_norm_stats(int64_t N, int64_t C, int64_t S, const T* x, T* mean, T* var,
                        void* scratch, size_t scratch_bytes, cudaStream_t stream) {
  if (C == 0 || N * S == 0) return ok_status();
  if (Status st = check_launch(N, C, S, scratch_bytes); !st.ok()) return st;
  const int64_t splits = splits_for(N, C, S), count = N * S;
  const int64_t per_split = (count + splits - 1) / splits;
  const Scratch sc = carve(scratch, C, splits);
  const dim3 grid{unsigned(C), unsigned(splits)};
  partial_sums_kernel<Sums::values, T>
      <<<grid, kThreads, 0, stream>>>(N, C, S, x, nullptr, nullptr, sc, per_split);
  if (Status st = launch_status("batch_norm partial_sums_kernel (values)"); !st.ok()) return st;
  finish_mean_kernel<T><<<blocks_for(C), kThreads, 0, stream>>>(C, count, splits, sc, mean);
  if (Status st = launch_status("batch_norm finish_mean_kernel"); !st.ok()) return st;
  partial_sums_kernel<Sums::squared_deviations, T>
      <<<grid, kThreads, 0, stream>>>(N, C, S, x, nullptr, nullptr, sc, per_split);
  if (Status st = launch_status("batch_norm partial_sums_kernel (deviations)"); !st.ok()) return st;
  finish_var_kernel<T><<<blocks_for(C), kThreads, 0, stream>>>(C, count, splits, sc, var);
  return launch_status("batch_norm finish_var_kernel");
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
                           T* gweight, T* gbias, void* scratch, size_t scratch_bytes,
                           cudaStream_t stream) {
  if (C == 0) return ok_status();
  if (Status st = check_launch(N, C, S, scratch_bytes); !st.ok()) return st;
  const int64_t splits = splits_for(N, C, S), count = N * S;
  const int64_t per_split = std::max<int64_t>(1, (count + splits - 1) / splits);
  const Scratch sc = carve(scratch, C, splits);
  T* coef = reinterpret_cast<T*>(sc.mean + C);  // after the means: 8-byte aligned
  const dim3 grid{unsigned(C), unsigned(splits)};
  partial_sums_kernel<Sums::gradients, T>
      <<<grid, kThreads, 0, stream>>>(N, C, S, x, gy, mean, sc, per_split);
  if (Status st = launch_status("batch_norm partial_sums_kernel (gradients)"); !st.ok()) return st;
  finish_gradients_kernel<T><<<blocks_for(C), kThreads, 0, stream>>>(
      C, count, splits, sc, invstd, weight, batch_stats, gweight, gbias, coef);
  if (Status st = launch_status("batch_norm finish_gradients_kernel"); !st.ok()) return st;
  const int64_t total = N * C * S;
  if (!gx || total == 0) return ok_status();
  input_gradient_kernel<T>
      <<<blocks_for(total), kThreads, 0, stream>>>(N, C, S, x, mean, gy, coef, gx);
  return launch_status("batch_norm input_gradient_kernel");
}

#define SH_INSTANTIATE(T)                                                                        \
  template Status batch_norm_stats<T>(int64_t, int64_t, int64_t, const T*, T*, T*, void*,       \
                                      size_t, cudaStream_t);                                    \
  template Status batch_norm_apply<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*,  \
                                      const T*, const T*, T*, cudaStream_t);                    \
  template Status batch_norm_backward<T>(int64_t, int64_t, int64_t, const T*, const T*,         \
                                         const T*, const T*, const T*, bool, T*, T*, T*, void*, \
                                         size_t, cudaStream_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cuda
