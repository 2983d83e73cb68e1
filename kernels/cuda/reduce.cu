#include "kernels/cuda/reduce.h"

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

constexpr int64_t kNoIndex = INT64_MAX;  // a thread that saw no element

// A candidate extreme value and where it was found.
template <class T>
struct Best {
  T value;
  int64_t index;
};

// Whether a beats b: NaN beats numbers, then the larger (max) or smaller (min) value, then on
// equal values the earlier index. This is the CPU's "first extreme, NaN wins" rule made
// order-free, so partial results can be combined in any order.
template <class T>
__device__ inline bool beats(const Best<T>& a, const Best<T>& b, bool is_max) {
  if (a.index == kNoIndex) return false;
  if (b.index == kNoIndex) return true;
  const bool an = a.value != a.value, bn = b.value != b.value;
  if (an != bn) return an;
  if (!an && a.value != b.value) return is_max ? a.value > b.value : a.value < b.value;
  return a.index < b.index;
}

template <class T>
__device__ inline Best<T> warp_best(Best<T> v, bool is_max) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    Best<T> o{__shfl_xor_sync(0xffffffffu, v.value, offset),
              __shfl_xor_sync(0xffffffffu, v.index, offset)};
    if (beats(o, v, is_max)) v = o;
  }
  return v;
}

// inner == 1: one block per row, threads stride over the row, then a block reduction.
template <class T>
__global__ void reduce_rows_kernel(ReduceOp op, int64_t outer, int64_t n, const T* __restrict__ x,
                                   T* __restrict__ y, int64_t* __restrict__ index) {
  __shared__ T scratch_v[32];
  __shared__ int64_t scratch_i[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* xr = x + row * n;
    if (op == ReduceOp::sum) {
      T s = 0;
      for (int64_t k = threadIdx.x; k < n; k += blockDim.x) s += xr[k];
      s = block_sum(s, scratch_v);
      if (threadIdx.x == 0) y[row] = s;
      continue;
    }
    const bool is_max = op == ReduceOp::max;
    Best<T> b{T(0), kNoIndex};
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      Best<T> c{xr[k], k};
      if (beats(c, b, is_max)) b = c;
    }
    b = warp_best(b, is_max);
    __syncthreads();  // the previous row's readers of scratch are done
    if (lane == 0) { scratch_v[warp] = b.value; scratch_i[warp] = b.index; }
    __syncthreads();
    if (warp == 0) {
      Best<T> w = lane < warps ? Best<T>{scratch_v[lane], scratch_i[lane]} : Best<T>{T(0), kNoIndex};
      w = warp_best(w, is_max);
      if (lane == 0) {
        y[row] = w.value;
        if (index) index[row] = w.index;
      }
    }
  }
}

// inner > 1: one thread per output, walking k; neighbouring threads read neighbouring columns.
template <class T>
__global__ void reduce_columns_kernel(ReduceOp op, int64_t outer, int64_t n, int64_t inner,
                                      const T* __restrict__ x, T* __restrict__ y,
                                      int64_t* __restrict__ index) {
  const int64_t total = outer * inner;
  for (int64_t j = global_thread(); j < total; j += grid_threads()) {
    const int64_t o = j / inner, i = j % inner;
    const T* xc = x + o * n * inner + i;
    if (op == ReduceOp::sum) {
      T s = 0;
      for (int64_t k = 0; k < n; ++k) s += xc[k * inner];
      y[j] = s;
      continue;
    }
    const bool is_max = op == ReduceOp::max;
    T best = xc[0];
    int64_t arg = 0;
    for (int64_t k = 1; k < n && best == best; ++k) {
      const T v = xc[k * inner];
      if (v != v || (is_max ? v > best : v < best)) { best = v; arg = k; }
    }
    y[j] = best;
    if (index) index[j] = arg;
  }
}

// Sums with inner >= kWideInner (a bias gradient: [batch, features] summed over the batch): a
// block of 32 x 32 threads takes 32 neighbouring columns of one outer index; each of its 32
// row lanes sums every 32nd row, then the lanes' sums are added in shared memory (a fixed
// order: the result does not depend on the launch). Spreading the rows over 32 threads lets a
// 1024-column sum fill the GPU, where one thread per column would be 4 blocks.
constexpr int64_t kWideInner = 16;

template <class T>
__global__ void __launch_bounds__(1024)
    sum_columns_kernel(int64_t outer, int64_t n, int64_t inner, const T* __restrict__ x,
                       T* __restrict__ y) {
  __shared__ T part[32][33];  // [row lane][column], padded against bank conflicts
  const int col = threadIdx.x, lane = threadIdx.y;
  const int64_t j = int64_t(blockIdx.x) * 32 + col;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    T s = 0;
    if (j < inner) {
      const T* xc = x + o * n * inner + j;
      for (int64_t k = lane; k < n; k += 32) s += xc[k * inner];
    }
    __syncthreads();  // the previous outer index's readers of part are done
    part[lane][col] = s;
    __syncthreads();
    if (lane == 0 && j < inner) {
      T t = 0;
      for (int l = 0; l < 32; ++l) t += part[l][col];
      y[o * inner + j] = t;
    }
  }
}

}  // namespace

template <class T>
Status reduce(ReduceOp op, int64_t outer, int64_t n, int64_t inner, const T* x, T* y,
              int64_t* index, cudaStream_t stream) {
  if (outer == 0 || inner == 0) return ok_status();
  if (n == 0 && op != ReduceOp::sum) return Status{"reduce", "max/min over an empty dim"};
  if (inner == 1) {
    const unsigned blocks = unsigned(outer < 65536 ? outer : 65536);
    reduce_rows_kernel<<<blocks, kThreads, 0, stream>>>(op, outer, n, x, y, index);
    return launch_status("reduce_rows_kernel");
  }
  if (op == ReduceOp::sum && inner >= kWideInner) {
    const int64_t groups = (inner + 31) / 32;
    if (groups > 0x7fffffff) return Status{"reduce", "too many columns for one launch"};
    const dim3 grid(unsigned(groups), unsigned(outer < 65535 ? outer : 65535));
    sum_columns_kernel<<<grid, dim3(32, 32), 0, stream>>>(outer, n, inner, x, y);
    return launch_status("sum_columns_kernel");
  }
  reduce_columns_kernel<<<blocks_for(outer * inner), kThreads, 0, stream>>>(op, outer, n, inner, x,
                                                                            y, index);
  return launch_status("reduce_columns_kernel");
}

template Status reduce<float>(ReduceOp, int64_t, int64_t, int64_t, const float*, float*, int64_t*,
                              cudaStream_t);
template Status reduce<double>(ReduceOp, int64_t, int64_t, int64_t, const double*, double*,
                               int64_t*, cudaStream_t);

}  // namespace shallow::cuda
