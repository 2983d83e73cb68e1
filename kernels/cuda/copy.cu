#include "kernels/cuda/copy.h"

#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/launch.cuh"

#include <algorithm>

namespace shallow::cuda {
namespace {

// Shape and strides travel to the kernel by value (kernel parameters live in constant memory).
template <class I>
struct Layout {
  int ndim;
  I shape[kMaxCopyDims];
  I src_strides[kMaxCopyDims];
  I dst_strides[kMaxCopyDims];
};

// Offsets in src and dst of row-major position i (last dim fastest). I is int32_t when every
// index fits: a 32-bit division costs a fraction of a 64-bit one.
template <class I>
__device__ inline void offsets(const Layout<I>& l, I i, I& so, I& d_o) {
  so = 0, d_o = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const I k = i % l.shape[d];
    i /= l.shape[d];
    so += k * l.src_strides[d];
    d_o += k * l.dst_strides[d];
  }
}

template <class Src, class Dst, class I>
__global__ void strided_copy_kernel(I n, Layout<I> l, const Src* src, Dst* dst) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += I(gridDim.x) * blockDim.x) {
    I so, d_o;
    offsets(l, i, so, d_o);
    dst[d_o] = convert<Dst>(src[so]);
  }
}

// The last dim contiguous in both and 16 bytes a whole number of elements: one thread per
// 16-byte chunk, the layout's last dim counted in chunks (its strides 1).
template <class I>
__global__ void strided_copy_chunks_kernel(I chunks, Layout<I> l, const uint4* src, uint4* dst) {
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < chunks; i += I(gridDim.x) * blockDim.x) {
    I so, d_o;
    offsets(l, i, so, d_o);
    dst[d_o] = src[so];
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

// Drops size-1 dims and merges neighbours that are contiguous in both tensors, so a copy walks
// as few dims as its layouts allow. Returns the number of dims left (at least 1).
int simplify(int ndim, const int64_t* shape, const int64_t* ss, const int64_t* ds, int64_t* shape_out,
             int64_t* ss_out, int64_t* ds_out) {
  int m = 0;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    if (m > 0 && ss_out[m - 1] == ss[d] * shape[d] && ds_out[m - 1] == ds[d] * shape[d]) {
      shape_out[m - 1] *= shape[d];
      ss_out[m - 1] = ss[d];
      ds_out[m - 1] = ds[d];
      continue;
    }
    shape_out[m] = shape[d], ss_out[m] = ss[d], ds_out[m] = ds[d];
    ++m;
  }
  if (m == 0) shape_out[0] = 1, ss_out[0] = 1, ds_out[0] = 1, m = 1;
  return m;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <class I>
Layout<I> make_layout(int ndim, const int64_t* shape, const int64_t* ss, const int64_t* ds) {
  Layout<I> l{};
  l.ndim = ndim;
  for (int d = 0; d < ndim; ++d) l.shape[d] = I(shape[d]), l.src_strides[d] = I(ss[d]), l.dst_strides[d] = I(ds[d]);
  return l;
}

// The largest offset either layout reaches, + 1: what the index type must hold.
int64_t reach(int ndim, const int64_t* shape, const int64_t* ss, const int64_t* ds) {
  int64_t a = 0, b = 0;
  for (int d = 0; d < ndim; ++d) a += (shape[d] - 1) * ss[d], b += (shape[d] - 1) * ds[d];
  return std::max(a, b) + 1;
}

}  // namespace

template <class Src, class Dst>
Status strided_copy(int ndim, const int64_t* shape_in, const Src* src, const int64_t* src_strides_in,
                    Dst* dst, const int64_t* dst_strides_in, cudaStream_t stream) {
  if (ndim > kMaxCopyDims)
    return Status{"strided_copy", "more than " + std::to_string(kMaxCopyDims) + " dims"};
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape_in[d];
  if (n == 0) return ok_status();
  bool negative = false;  // the fast paths below assume strides >= 0
  for (int d = 0; d < ndim; ++d) negative |= src_strides_in[d] < 0 || dst_strides_in[d] < 0;
  int64_t shape[kMaxCopyDims], ss[kMaxCopyDims], ds[kMaxCopyDims];
  const int nd = simplify(ndim, shape_in, src_strides_in, dst_strides_in, shape, ss, ds);
  if (negative) {
    strided_copy_kernel<Src, Dst, int64_t><<<blocks_for(n), kThreads, 0, stream>>>(
        n, make_layout<int64_t>(nd, shape, ss, ds), src, dst);
    return launch_status("strided_copy_kernel");
  }
  if (nd == 1 && ss[0] == 1 && ds[0] == 1) {  // one contiguous run
    if constexpr (std::is_same_v<Src, Dst>) {
      SH_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(Dst),
                                              cudaMemcpyDeviceToDevice, stream));
      return ok_status();
    } else {
      convert_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, src, dst);
      return launch_status("convert_kernel");
    }
  }
  const bool fits32 = n < (int64_t(1) << 31) && reach(nd, shape, ss, ds) < (int64_t(1) << 31);
  if constexpr (std::is_same_v<Src, Dst>) {
    constexpr int64_t w = 16 / sizeof(Dst);
    bool chunks = 16 % sizeof(Dst) == 0 && ss[nd - 1] == 1 && ds[nd - 1] == 1 &&
                  shape[nd - 1] % w == 0 && aligned16(src) && aligned16(dst);
    for (int d = 0; chunks && d < nd - 1; ++d) chunks = ss[d] % w == 0 && ds[d] % w == 0;
    if (chunks) {
      int64_t cshape[kMaxCopyDims], css[kMaxCopyDims], cds[kMaxCopyDims];
      for (int d = 0; d < nd; ++d) cshape[d] = shape[d], css[d] = ss[d] / w, cds[d] = ds[d] / w;
      cshape[nd - 1] = shape[nd - 1] / w, css[nd - 1] = 1, cds[nd - 1] = 1;
      const int64_t c = n / w;
      const auto* s16 = reinterpret_cast<const uint4*>(src);
      auto* d16 = reinterpret_cast<uint4*>(dst);
      if (fits32)
        strided_copy_chunks_kernel<int32_t><<<blocks_for(c), kThreads, 0, stream>>>(
            int32_t(c), make_layout<int32_t>(nd, cshape, css, cds), s16, d16);
      else
        strided_copy_chunks_kernel<int64_t><<<blocks_for(c), kThreads, 0, stream>>>(
            c, make_layout<int64_t>(nd, cshape, css, cds), s16, d16);
      return launch_status("strided_copy_chunks_kernel");
    }
  }
  if (fits32)
    strided_copy_kernel<Src, Dst, int32_t><<<blocks_for(n), kThreads, 0, stream>>>(
        int32_t(n), make_layout<int32_t>(nd, shape, ss, ds), src, dst);
  else
    strided_copy_kernel<Src, Dst, int64_t><<<blocks_for(n), kThreads, 0, stream>>>(
        n, make_layout<int64_t>(nd, shape, ss, ds), src, dst);
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
