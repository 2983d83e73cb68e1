// Indexing on CUDA tensors: picks the kernel instantiation by element width and index type.
#include "engine/cuda/indexing_ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/indexing.h"

namespace shallow::gpu {
namespace {

// Calls f(T{}) with T the unsigned integer as wide as the dtype: the moving kernels copy bits.
template <class F>
void by_width(DType t, const char* name, F&& f) {
  switch (dtype_size(t)) {
    case 1:
      return f(uint8_t{});
    case 2:
      return f(uint16_t{});
    case 4:
      return f(uint32_t{});
    case 8:
      return f(uint64_t{});
  }
  throw Error(str_cat(name, ": internal: no kernel for elements of ", dtype_size(t), " bytes"));
}

template <class F>
void by_index_type(DType t, F&& f) {
  if (t == DType::i64) return f(int64_t{});
  return f(int32_t{});
}

template <class T>
const T* ptr(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}
template <class T>
T* mut_ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace

void index_select(int64_t outer, int64_t n_src, int64_t inner, const Tensor& src,
                  const Tensor& index, Tensor& out, const char* name) {
  cudaStream_t stream = stream_for(src.device(), name);
  by_width(src.dtype(), name, [&](auto wtag) {
    using T = decltype(wtag);
    by_index_type(index.dtype(), [&](auto itag) {
      using I = decltype(itag);
      check(cuda::index_select<T, I>(outer, n_src, inner, ptr<T>(src), index.numel(), ptr<I>(index),
                                     mut_ptr<T>(out), stream),
            name);
    });
  });
}

void index_add(int64_t outer, int64_t n_dst, int64_t inner, Tensor& dst, const Tensor& index,
               const Tensor& src, const char* name) {
  cudaStream_t stream = stream_for(dst.device(), name);
  SH_DISPATCH_FLOAT(dst.dtype(), name, [&] {
    by_index_type(index.dtype(), [&](auto itag) {
      using I = decltype(itag);
      check(cuda::index_add<scalar_t, I>(outer, n_dst, inner, dst.data<scalar_t>(), index.numel(),
                                         ptr<I>(index), src.data<scalar_t>(), stream),
            name);
    });
  });
}

void gather(int64_t outer, int64_t n_src, int64_t inner, const Tensor& src, int64_t n_index,
            const Tensor& index, Tensor& out, const char* name) {
  cudaStream_t stream = stream_for(src.device(), name);
  by_width(src.dtype(), name, [&](auto wtag) {
    using T = decltype(wtag);
    by_index_type(index.dtype(), [&](auto itag) {
      using I = decltype(itag);
      check(cuda::gather<T, I>(outer, n_src, inner, ptr<T>(src), n_index, ptr<I>(index),
                               mut_ptr<T>(out), stream),
            name);
    });
  });
}

void scatter_add(int64_t outer, int64_t n_dst, int64_t inner, Tensor& dst, int64_t n_index,
                 const Tensor& index, const Tensor& src, const char* name) {
  cudaStream_t stream = stream_for(dst.device(), name);
  SH_DISPATCH_FLOAT(dst.dtype(), name, [&] {
    by_index_type(index.dtype(), [&](auto itag) {
      using I = decltype(itag);
      check(cuda::scatter_add<scalar_t, I>(outer, n_dst, inner, dst.data<scalar_t>(), n_index,
                                           ptr<I>(index), src.data<scalar_t>(), stream),
            name);
    });
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out, const char* name) {
  cudaStream_t stream = stream_for(out.device(), name);
  const Shape& shape = out.shape();
  by_width(a.dtype(), name, [&](auto wtag) {
    using T = decltype(wtag);
    auto run = [&](auto ctag) {
      using C = decltype(ctag);
      check(cuda::where<T, C>(int(shape.size()), shape.data(), ptr<C>(cond), cond.strides().data(),
                              ptr<T>(a), a.strides().data(), ptr<T>(b), b.strides().data(),
                              mut_ptr<T>(out), stream),
            name);
    };
    switch (cond.dtype()) {
      case DType::u8:
        return run(uint8_t{});
      case DType::f64:
        return run(double{});
      case DType::f32:
        return run(float{});
      default:
        throw Error(str_cat(name, ": internal: condition of dtype ", dtype_name(cond.dtype())));
    }
  });
}

}  // namespace shallow::gpu
