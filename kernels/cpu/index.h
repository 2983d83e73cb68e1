#pragma once
// Indexing kernels on contiguous blocks. A tensor indexed along one dim is seen as
// [outer, n, inner]: `outer` is the product of the sizes before that dim, `inner` of those after.
//
// The kernels that only move elements take T = uint8_t, uint16_t, uint32_t or uint64_t: they
// copy bits, so one instantiation serves every dtype of that width exactly (bf16 and i32 alike).
// The kernels that add (the backwards) take float or double. Index types are int32_t or int64_t.
// No kernel checks its indices: the caller checks them with first_out_of_range first.
#include <cstdint>

namespace shallow::cpu {

// Position of the first index outside [0, size), or -1 when every index is in range.
template <class I>
int64_t first_out_of_range(int64_t n, const I* index, int64_t size);

// out[o, k, i] = src[o, index[k], i];  src [outer, n_src, inner], out [outer, n_index, inner].
template <class T, class I>
void index_select(int64_t outer, int64_t n_src, int64_t inner, const T* src, int64_t n_index,
                  const I* index, T* out);

// dst[o, index[k], i] += src[o, k, i]: the backward of index_select (repeated indices add up).
// dst [outer, n_dst, inner], src [outer, n_index, inner].
template <class T, class I>
void index_add(int64_t outer, int64_t n_dst, int64_t inner, T* dst, int64_t n_index,
               const I* index, const T* src);

// out[o, k, i] = src[o, index[o, k, i], i];  src [outer, n_src, inner], index and out
// [outer, n_index, inner] (torch.gather along the middle dim).
template <class T, class I>
void gather(int64_t outer, int64_t n_src, int64_t inner, const T* src, int64_t n_index,
            const I* index, T* out);

// dst[o, index[o, k, i], i] += src[o, k, i]: the backward of gather.
template <class T, class I>
void scatter_add(int64_t outer, int64_t n_dst, int64_t inner, T* dst, int64_t n_index,
                 const I* index, const T* src);

// out = cond != 0 ? a : b elementwise over `shape`; each operand comes with its own strides
// (0 on a broadcast dim) and out is contiguous. C is uint8_t, float or double (a NaN cond is
// nonzero, so it picks a).
template <class T, class C>
void where(int ndim, const int64_t* shape, const C* cond, const int64_t* cond_strides,
           const T* a, const int64_t* a_strides, const T* b, const int64_t* b_strides, T* out);

}  // namespace shallow::cpu
