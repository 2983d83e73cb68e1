#include "kernels/cuda/copy.h"

#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// Shape and strides travel to the kernel by value (kernel parameters live in constant memory).
struct Layout {
  int ndim;
  int64_t shape[kMaxCopyDims];
  int64_t src_strides[kMaxCopyDims];
  int64_t dst_strides[kMaxCopyDims];
};

template <class Src, class Dst>
__global__ void strided_copy_kernel(int64_t n, Layout l, const Src* src, Dst* dst) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    // Row-major multi-index of i, last dim fastest.
    int64_t rem = i, so = 0, d_o = 0;
    for (int d = l.ndim - 1; d >= 0; --d) {
      const int64_t k = rem % l.shape[d];
      rem /= l.shape[d];
      so += k * l.src_strides[d];
      d_o += k * l.dst_strides[d];
    }
    dst[d_o] = convert<Dst>(src[so]);
  }
}

template <class Src, class Dst>
__global__ void convert_kernel(int64_t n, const Src* src, Dst* dst) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] = convert<Dst>(src[i]);
}

template <class T>
__global__ void fill_kernel(int64_t n, T* dst, T value) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] = value;
}

bool is_row_major(int ndim, const int64_t* shape, const int64_t* strides) {
  int64_t expected = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

}  // namespace

template <class Src, class Dst>
Status strided_copy(int ndim, const int64_t* shape, const Src* src, const int64_t* src_strides,
                    Dst* dst, const int64_t* dst_strides, cudaStream_t stream) {
  if (ndim > kMaxCopyDims)
    return Status{"strided_copy", "more than " + std::to_string(kMaxCopyDims) + " dims"};
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  if (n == 0) return ok_status();
  if (is_row_major(ndim, shape, src_strides) && is_row_major(ndim, shape, dst_strides)) {
    if constexpr (std::is_same_v<Src, Dst>) {
      SH_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(Dst),
                                              cudaMemcpyDeviceToDevice, stream));
      return ok_status();
    } else {
      convert_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, src, dst);
      return launch_status("convert_kernel");
    }
  }
  Layout l{};
  l.ndim = ndim;
  for (int d = 0; d < ndim; ++d) {
    l.shape[d] = shape[d];
    l.src_strides[d] = src_strides[d];
    l.dst_strides[d] = dst_strides[d];
  }
  strided_copy_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, l, src, dst);
  return launch_status("strided_copy_kernel");
}

template <class T>
Status fill(int64_t n, T* dst, T value, cudaStream_t stream) {
  if (n == 0) return ok_status();
  fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, dst, value);
  return launch_status("fill_kernel");
}

// Every pair of the seven storage types.
#define SH_COPY_PAIR(S, D)                                                                    \
  template Status strided_copy<S, D>(int, const int64_t*, const S*, const int64_t*, D*,       \
                                     const int64_t*, cudaStream_t);
#define SH_COPY_FROM(S)                                                                       \
  SH_COPY_PAIR(S, float) SH_COPY_PAIR(S, double) SH_COPY_PAIR(S, bf16) SH_COPY_PAIR(S, f16)   \
  SH_COPY_PAIR(S, int32_t) SH_COPY_PAIR(S, int64_t) SH_COPY_PAIR(S, uint8_t)
SH_COPY_FROM(float)
SH_COPY_FROM(double)
SH_COPY_FROM(bf16)
SH_COPY_FROM(f16)
SH_COPY_FROM(int32_t)
SH_COPY_FROM(int64_t)
SH_COPY_FROM(uint8_t)

template Status fill<float>(int64_t, float*, float, cudaStream_t);
template Status fill<double>(int64_t, double*, double, cudaStream_t);
template Status fill<bf16>(int64_t, bf16*, bf16, cudaStream_t);
template Status fill<f16>(int64_t, f16*, f16, cudaStream_t);
template Status fill<int32_t>(int64_t, int32_t*, int32_t, cudaStream_t);
template Status fill<int64_t>(int64_t, int64_t*, int64_t, cudaStream_t);
template Status fill<uint8_t>(int64_t, uint8_t*, uint8_t, cudaStream_t);

}  // namespace shallow::cuda
