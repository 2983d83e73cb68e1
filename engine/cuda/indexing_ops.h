#pragma once
// Indexing on CUDA tensors (declared in every build; engine/cuda/without_cuda_indexing.cpp holds
// the stand-ins). Layouts as kernels/cpu/index.h: the indexed tensor seen as [outer, n, inner]
// around one dim. src, index, dst and out are contiguous and on one CUDA device; indices are
// i32 or i64 and already checked to be in range. The moving ops take any dtype (they copy
// bits); the adding ones (the backwards, with atomics) take f32 or f64.
#include "engine/tensor.h"

namespace shallow::gpu {

// out[o, k, i] = src[o, index[k], i] for the index.numel() entries of a 1-D index.
void index_select(int64_t outer, int64_t n_src, int64_t inner, const Tensor& src,
                  const Tensor& index, Tensor& out, const char* name);
// dst[o, index[k], i] += src[o, k, i].
void index_add(int64_t outer, int64_t n_dst, int64_t inner, Tensor& dst, const Tensor& index,
               const Tensor& src, const char* name);
// out[o, k, i] = src[o, index[o, k, i], i]; index and out [outer, n_index, inner].
void gather(int64_t outer, int64_t n_src, int64_t inner, const Tensor& src, int64_t n_index,
            const Tensor& index, Tensor& out, const char* name);
// dst[o, index[o, k, i], i] += src[o, k, i].
void scatter_add(int64_t outer, int64_t n_dst, int64_t inner, Tensor& dst, int64_t n_index,
                 const Tensor& index, const Tensor& src, const char* name);
// out = cond != 0 ? a : b; cond, a and b already expanded to out's shape (any strides), cond
// u8, f32 or f64; out contiguous, of a's dtype.
void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out, const char* name);

}  // namespace shallow::gpu
