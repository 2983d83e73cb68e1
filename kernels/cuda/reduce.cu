#include "kernels/cuda/reduce.h"

#include "kernels/cuda/column_sum.cuh"
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

// The block's best of its threads' candidates, in thread 0. `scratch_*` hold 32 entries; the
// function synchronizes before reusing them, so it may be called in a loop.
template <class T>
__device__ inline Best<T> block_best(Best<T> b, bool is_max, T* scratch_v, int64_t* scratch_i) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  b = warp_best(b, is_max);
  __syncthreads();  // earlier readers of scratch are done
  if (lane == 0) { scratch_v[warp] = b.value; scratch_i[warp] = b.index; }
  __syncthreads();
  Best<T> w{T(0), kNoIndex};
  if (warp == 0) {
    if (lane < warps) w = Best<T>{scratch_v[lane], scratch_i[lane]};
    w = warp_best(w, is_max);
  }
  return w;
}

// The sum (or best) of xr[begin, end) by the whole block; the result in thread 0.
template <class T>
__device__ inline T block_row_sum(const T* xr, int64_t begin, int64_t end, T* scratch) {
  T s = 0;
  for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) s += xr[k];
  return block_sum(s, scratch);
}

template <class T>
__device__ inline Best<T> block_row_best(const T* xr, int64_t begin, int64_t end, bool is_max,
                                         T* scratch_v, int64_t* scratch_i) {
  Best<T> b{T(0), kNoIndex};
  for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
    Best<T> c{xr[k], k};
    if (beats(c, b, is_max)) b = c;
  }
  return block_best(b, is_max, scratch_v, scratch_i);
}

// inner == 1: one block per row, threads stride over the row, then a block reduction.
template <class T>
__global__ void reduce_rows_kernel(ReduceOp op, int64_t outer, int64_t n, const T* __restrict__ x,
                                   T* __restrict__ y, int64_t* __restrict__ index) {
  __shared__ T scratch_v[32];
  __shared__ int64_t scratch_i[32];
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* xr = x + row * n;
    if (op == ReduceOp::sum) {
      const T s = block_row_sum(xr, 0, n, scratch_v);
      if (threadIdx.x == 0) y[row] = s;
      continue;
    }
    const Best<T> w = block_row_best(xr, 0, n, op == ReduceOp::max, scratch_v, scratch_i);
    if (threadIdx.x == 0) {
      y[row] = w.value;
      if (index) index[row] = w.index;
    }
  }
}

// ---- few long rows: split into parts, one block each (grid: parts x rows), then combined

// Rows at least this long are split when there are fewer than kSplitRowsBelow of them; each
// part holds about kPartLength values. The split depends on the sizes only (not on the GPU),
// so a result is the same on every device.
constexpr int64_t kSplitRowMin = int64_t(1) << 15;
constexpr int64_t kSplitRowsBelow = 256;
constexpr int64_t kPartLength = 8192;
constexpr int64_t kMaxParts = 1024;

inline int64_t row_parts(int64_t outer, int64_t n, int64_t inner) {
  if (inner != 1 || n < kSplitRowMin || outer >= kSplitRowsBelow) return 1;
  const int64_t parts = (n + kPartLength - 1) / kPartLength;
  return parts < kMaxParts ? parts : kMaxParts;
}

// Part p of row r is x[r, p * chunk, min(n, (p + 1) * chunk)); its result goes to
// values[r * parts + p] (and, for max/min, the row-wide index of its best to indices[...]).
template <class T>
__global__ void reduce_row_parts_kernel(ReduceOp op, int64_t n, int64_t chunk,
                                        const T* __restrict__ x, T* __restrict__ values,
                                        int64_t* __restrict__ indices) {
  __shared__ T scratch_v[32];
  __shared__ int64_t scratch_i[32];
  const int64_t row = blockIdx.y, part = blockIdx.x, parts = gridDim.x;
  const int64_t begin = part * chunk, end = begin + chunk < n ? begin + chunk : n;
  const T* xr = x + row * n;
  if (op == ReduceOp::sum) {
    const T s = block_row_sum(xr, begin, end, scratch_v);
    if (threadIdx.x == 0) values[row * parts + part] = s;
    return;
  }
  const Best<T> w = block_row_best(xr, begin, end, op == ReduceOp::max, scratch_v, scratch_i);
  if (threadIdx.x == 0) {
    values[row * parts + part] = w.value;
    indices[row * parts + part] = w.index;
  }
}

// One block per row combines the parts' best values; the rule of `beats` makes the order of
// combination irrelevant.
template <class T>
__global__ void combine_row_parts_kernel(bool is_max, int64_t parts, const T* __restrict__ values,
                                         const int64_t* __restrict__ indices, T* __restrict__ y,
                                         int64_t* __restrict__ index) {
  __shared__ T scratch_v[32];
  __shared__ int64_t scratch_i[32];
  const int64_t row = blockIdx.x;
  Best<T> b{T(0), kNoIndex};
  for (int64_t p = threadIdx.x; p < parts; p += blockDim.x) {
    Best<T> c{values[row * parts + p], indices[row * parts + p]};
    if (beats(c, b, is_max)) b = c;
  }
  const Best<T> w = block_best(b, is_max, scratch_v, scratch_i);
  if (threadIdx.x == 0) {
    y[row] = w.value;
    if (index) index[row] = w.index;
  }
}

template <class T>
Status reduce_row_parts(ReduceOp op, int64_t outer, int64_t n, int64_t parts, const T* x, T* y,
                        int64_t* index, void* scratch, size_t scratch_bytes,
                        cudaStream_t stream) {
  if (scratch == nullptr || scratch_bytes < reduce_scratch_bytes<T>(outer, n, 1))
    return Status{"reduce", "scratch smaller than reduce_scratch_bytes"};
  // indices first: 8-byte entries keep the values after them aligned
  int64_t* indices = static_cast<int64_t*>(scratch);
  T* values = reinterpret_cast<T*>(indices + outer * parts);
  const int64_t chunk = (n + parts - 1) / parts;
  reduce_row_parts_kernel<<<dim3(unsigned(parts), unsigned(outer)), kThreads, 0, stream>>>(
      op, n, chunk, x, values, indices);
  if (Status st = launch_status("reduce_row_parts_kernel"); !st.ok()) return st;
  if (op == ReduceOp::sum) {  // the parts' sums added by one block per row, in a fixed order
    reduce_rows_kernel<<<unsigned(outer), kThreads, 0, stream>>>(op, outer, parts, values, y,
                                                                 nullptr);
    return launch_status("reduce_rows_kernel");
  }
  combine_row_parts_kernel<<<unsigned(outer), kThreads, 0, stream>>>(
      op == ReduceOp::max, parts, values, indices, y, index);
  return launch_status("combine_row_parts_kernel");
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

// Sums with inner >= kWideInner (a bias gradient: [batch, features] summed over the batch):
// column_sum.cuh's blocks of 8 (or, for fewer than 128 rows, 32) neighbouring columns of one
// outer index, added in a fixed order (the result does not depend on the launch). Blocks of 32
// columns alone gave a [1024, 1024] sum 32 blocks: 10 us on an H200.
constexpr int64_t kWideInner = 16;

template <class T, int C>
__global__ void __launch_bounds__(kColumnSumThreads)
    sum_columns_kernel(int64_t outer, int64_t n, int64_t inner, const T* __restrict__ x,
                       T* __restrict__ y) {
  using Sum = ColumnSum<C>;
  __shared__ T part[Sum::kParts];
  const int64_t j = int64_t(blockIdx.x) * C + Sum::col();
  const int64_t jt = int64_t(blockIdx.x) * C + threadIdx.x;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    T s = 0;
    if (j < inner) {
      const T* xc = x + o * n * inner + j;
      for (int64_t k = Sum::lane(); k < n; k += Sum::kLanes) s += xc[k * inner];
    }
    const T t = Sum::total(s, part);
    if (threadIdx.x < C && jt < inner) y[o * inner + jt] = t;
  }
}

}  // namespace

template <class T>
size_t reduce_scratch_bytes(int64_t outer, int64_t n, int64_t inner) {
  const int64_t parts = row_parts(outer, n, inner);
  return parts == 1 ? 0 : size_t(outer * parts) * (sizeof(int64_t) + sizeof(T));
}

template <class T>
Status reduce(ReduceOp op, int64_t outer, int64_t n, int64_t inner, const T* x, T* y,
              int64_t* index, void* scratch, size_t scratch_bytes, cudaStream_t stream) {
  if (outer == 0 || inner == 0) return ok_status();
  if (n == 0 && op != ReduceOp::sum) return Status{"reduce", "max/min over an empty dim"};
  if (const int64_t parts = row_parts(outer, n, inner); parts > 1)
    return reduce_row_parts(op, outer, n, parts, x, y, index, scratch, scratch_bytes, stream);
  if (inner == 1) {
    const unsigned blocks = unsigned(outer < 65536 ? outer : 65536);
    reduce_rows_kernel<<<blocks, kThreads, 0, stream>>>(op, outer, n, x, y, index);
    return launch_status("reduce_rows_kernel");
  }
  if (op == ReduceOp::sum && inner >= kWideInner) {
    const int width = column_sum_width(n);
    const int64_t groups = (inner + width - 1) / width;
    if (groups > 0x7fffffff) return Status{"reduce", "too many columns for one launch"};
    const dim3 grid(unsigned(groups), unsigned(outer < 65535 ? outer : 65535));
    if (width == 8)
      sum_columns_kernel<T, 8><<<grid, kColumnSumThreads, 0, stream>>>(outer, n, inner, x, y);
    else
      sum_columns_kernel<T, 32><<<grid, kColumnSumThreads, 0, stream>>>(outer, n, inner, x, y);
    return launch_status("sum_columns_kernel");
  }
  reduce_columns_kernel<<<blocks_for(outer * inner), kThreads, 0, stream>>>(op, outer, n, inner, x,
                                                                            y, index);
  return launch_status("reduce_columns_kernel");
}

template size_t reduce_scratch_bytes<float>(int64_t, int64_t, int64_t);
template size_t reduce_scratch_bytes<double>(int64_t, int64_t, int64_t);
template Status reduce<float>(ReduceOp, int64_t, int64_t, int64_t, const float*, float*, int64_t*,
                              void*, size_t, cudaStream_t);
template Status reduce<double>(ReduceOp, int64_t, int64_t, int64_t, const double*, double*,
                               int64_t*, void*, size_t, cudaStream_t);

}  // namespace shallow::cuda
