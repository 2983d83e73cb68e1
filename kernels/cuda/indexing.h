#pragma once
// Indexing on device arrays: the CUDA twin of kernels/cpu/index.h, with the same layouts
// (a tensor indexed along one dim seen as [outer, n, inner]) and the same element types: the
// moving kernels copy bits (T = uint8_t, uint16_t, uint32_t, uint64_t), the adding ones take
// float or double, indices are int32_t or int64_t. Indices are checked by the caller.
//
// The adding kernels (the backwards) use atomicAdd: repeated indices add up in an order that
// may change from run to run, so f32 sums may differ in the last bits between runs.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

// out[o, k, i] = src[o, index[k], i];  src [outer, n_src, inner], out [outer, n_index, inner].
template <class T, class I>
Status index_select(int64_t outer, int64_t n_src, int64_t inner, const T* src, int64_t n_index,
                    const I* index, T* out, cudaStream_t stream);

// dst[o, index[k], i] += src[o, k, i].
template <class T, class I>
Status index_add(int64_t outer, int64_t n_dst, int64_t inner, T* dst, int64_t n_index,
                 const I* index, const T* src, cudaStream_t stream);

// out[o, k, i] = src[o, index[o, k, i], i];  index and out [outer, n_index, inner].
template <class T, class I>
Status gather(int64_t outer, int64_t n_src, int64_t inner, const T* src, int64_t n_index,
              const I* index, T* out, cudaStream_t stream);

// dst[o, index[o, k, i], i] += src[o, k, i].
template <class T, class I>
Status scatter_add(int64_t outer, int64_t n_dst, int64_t inner, T* dst, int64_t n_index,
                   const I* index, const T* src, cudaStream_t stream);

constexpr int kMaxWhereDims = 12;

// out = cond != 0 ? a : b over `shape` (host array, at most kMaxWhereDims dims), each operand
// with its own strides (host arrays, 0 on a broadcast dim); out contiguous. C is uint8_t, float
// or double (a NaN condition is nonzero).
template <class T, class C>
Status where(int ndim, const int64_t* shape, const C* cond, const int64_t* cond_strides, const T* a,
             const int64_t* a_strides, const T* b, const int64_t* b_strides, T* out,
             cudaStream_t stream);

}  // namespace shallow::cuda
