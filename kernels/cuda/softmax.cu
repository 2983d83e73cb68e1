#include "kernels/cuda/softmax.h"

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// Running max m and sum s of exp(x - m) over the values seen so far.
template <class T>
struct MaxSum {
  T m;
  T s;
};

template <class T>
__device__ inline MaxSum<T> empty_max_sum() { return {-d_inf<T>(), T(0)}; }

template <class T>
__device__ inline void add_value(MaxSum<T>& a, T v) {
  if (v > a.m) {
    a.s = a.s * d_exp(a.m - v) + T(1);  // a.s is 0 while a.m is -inf, so no inf - inf is used
    a.m = v;
  } else if (a.m != -d_inf<T>()) {
    a.s += d_exp(v - a.m);
  } else {
    a.s += v != v ? v : T(0);  // NaN spreads, as on the CPU; a -inf value adds nothing
  }
}

template <class T>
__device__ inline MaxSum<T> merge(MaxSum<T> a, MaxSum<T> b) {
  if (a.s == T(0) && a.m == -d_inf<T>()) return b;
  if (b.s == T(0) && b.m == -d_inf<T>()) return a;
  const T m = a.m > b.m ? a.m : b.m;
  return {m, a.s * d_exp(a.m - m) + b.s * d_exp(b.m - m)};
}

template <class T>
__device__ inline MaxSum<T> warp_merge(MaxSum<T> v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    MaxSum<T> o{__shfl_xor_sync(0xffffffffu, v.m, offset), __shfl_xor_sync(0xffffffffu, v.s, offset)};
    v = merge(v, o);
  }
  return v;
}

template <class T>
__device__ inline T finish(T v, const MaxSum<T>& st, bool log) {
  return log ? v - st.m - d_log(st.s) : d_exp(v - st.m) / st.s;
}

// inner == 1: a block per row.
template <class T>
__global__ void softmax_rows_kernel(int64_t outer, int64_t n, const T* __restrict__ x,
                                    T* __restrict__ y, bool log) {
  __shared__ T sm[32], ss[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    MaxSum<T> st = empty_max_sum<T>();
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) add_value(st, xr[k]);
    st = warp_merge(st);
    __syncthreads();  // the previous row is done with sm/ss
    if (lane == 0) { sm[warp] = st.m; ss[warp] = st.s; }
    __syncthreads();
    MaxSum<T> all = empty_max_sum<T>();
    for (int w = 0; w < warps; ++w) all = merge(all, MaxSum<T>{sm[w], ss[w]});
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) yr[k] = finish(xr[k], all, log);
  }
}

// inner > 1: a thread per (outer, inner) line; neighbouring threads read neighbouring columns.
template <class T>
__global__ void softmax_columns_kernel(int64_t outer, int64_t n, int64_t inner,
                                       const T* __restrict__ x, T* __restrict__ y, bool log) {
  const int64_t total = outer * inner;
  for (int64_t j = global_thread(); j < total; j += grid_threads()) {
    const int64_t base = (j / inner) * n * inner + j % inner;
    MaxSum<T> st = empty_max_sum<T>();
    for (int64_t k = 0; k < n; ++k) add_value(st, x[base + k * inner]);
    for (int64_t k = 0; k < n; ++k) y[base + k * inner] = finish(x[base + k * inner], st, log);
  }
}

// The row's dot product: sum(gy * y) for softmax, sum(gy) for log-softmax.
template <class T>
__device__ inline T backward_term(T y, T gy, bool log) { return log ? gy : gy * y; }

template <class T>
__device__ inline T backward_value(T y, T gy, T dot, bool log) {
  return log ? gy - d_exp(y) * dot : y * (gy - dot);
}

template <class T>
__global__ void softmax_backward_rows_kernel(int64_t outer, int64_t n, const T* __restrict__ y,
                                             const T* __restrict__ gy, T* __restrict__ gx,
                                             bool log) {
  __shared__ T scratch[32];
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const int64_t base = row * n;
    T part = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
      part += backward_term(y[base + k], gy[base + k], log);
    const T dot = block_sum(part, scratch);
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
      gx[base + k] = backward_value(y[base + k], gy[base + k], dot, log);
  }
}

template <class T>
__global__ void softmax_backward_columns_kernel(int64_t outer, int64_t n, int64_t inner,
                                                const T* __restrict__ y, const T* __restrict__ gy,
                                                T* __restrict__ gx, bool log) {
  const int64_t total = outer * inner;
  for (int64_t j = global_thread(); j < total; j += grid_threads()) {
    const int64_t base = (j / inner) * n * inner + j % inner;
    T dot = 0;
    for (int64_t k = 0; k < n; ++k) dot += backward_term(y[base + k * inner], gy[base + k * inner], log);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t at = base + k * inner;
      gx[at] = backward_value(y[at], gy[at], dot, log);
    }
  }
}

unsigned row_blocks(int64_t outer) { return unsigned(outer < 65536 ? outer : 65536); }

}  // namespace

template <class T>
Status softmax(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log,
               cudaStream_t stream) {
  if (outer == 0 || n == 0 || inner == 0) return ok_status();
  if (inner == 1) {
    softmax_rows_kernel<<<row_blocks(outer), kThreads, 0, stream>>>(outer, n, x, y, log);
    return launch_status("softmax_rows_kernel");
  }
  softmax_columns_kernel<<<blocks_for(outer * inner), kThreads, 0, stream>>>(outer, n, inner, x, y, log);
  return launch_status("softmax_columns_kernel");
}

template <class T>
Status softmax_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* gy, T* gx,
                        bool log, cudaStream_t stream) {
  if (outer == 0 || n == 0 || inner == 0) return ok_status();
  if (inner == 1) {
    softmax_backward_rows_kernel<<<row_blocks(outer), kThreads, 0, stream>>>(outer, n, y, gy, gx, log);
    return launch_status("softmax_backward_rows_kernel");
  }
  softmax_backward_columns_kernel<<<blocks_for(outer * inner), kThreads, 0, stream>>>(
      outer, n, inner, y, gy, gx, log);
  return launch_status("softmax_backward_columns_kernel");
}

template Status softmax<float>(int64_t, int64_t, int64_t, const float*, float*, bool, cudaStream_t);
template Status softmax<double>(int64_t, int64_t, int64_t, const double*, double*, bool, cudaStream_t);
template Status softmax_backward<float>(int64_t, int64_t, int64_t, const float*, const float*,
                                        float*, bool, cudaStream_t);
template Status softmax_backward<double>(int64_t, int64_t, int64_t, const double*, const double*,
                                         double*, bool, cudaStream_t);

}  // namespace shallow::cuda
