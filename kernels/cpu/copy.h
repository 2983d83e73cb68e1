#pragma once
// Strided copy with type conversion: the one kernel behind contiguous(), to(dtype) and
// slice assignment. Any layout in, any layout out (strides in elements).
#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace shallow::cpu {

// Iterates a row-major index over `shape` and calls fn(offset_a, offset_b) per innermost run.
// Collapses nothing: callers pass at most 8 dims, which every tensor here has.
template <class Fn>
void for_each_row(int ndim, const int64_t* shape, const int64_t* sa, const int64_t* sb,
                  int64_t row_begin, int64_t row_end, Fn fn) {
  // Rows are all dims but the last; row r's offsets are computed from its multi-index.
  for (int64_t r = row_begin; r < row_end; ++r) {
    int64_t oa = 0, ob = 0, rem = r;
    for (int d = ndim - 2; d >= 0; --d) {
      int64_t i = rem % shape[d];
      rem /= shape[d];
      oa += i * sa[d];
      ob += i * sb[d];
    }
    fn(oa, ob);
  }
}

template <class Src, class Dst>
void strided_copy(int ndim, const int64_t* shape, const Src* src, const int64_t* src_strides,
                  Dst* dst, const int64_t* dst_strides) {
  if (ndim == 0) {
    dst[0] = static_cast<Dst>(src[0]);
    return;
  }
  int64_t inner = shape[ndim - 1];
  int64_t rows = 1;
  for (int d = 0; d + 1 < ndim; ++d) rows *= shape[d];
  if (rows == 0 || inner == 0) return;
  int64_t ss = src_strides[ndim - 1], ds = dst_strides[ndim - 1];
  parallel_for(0, rows, (1 << 15) / (inner + 1) + 1, [&](int64_t b, int64_t e) {
    for_each_row(ndim, shape, src_strides, dst_strides, b, e, [&](int64_t os, int64_t od) {
      const Src* s = src + os;
      Dst* d = dst + od;
      if (ss == 1 && ds == 1) {
        for (int64_t i = 0; i < inner; ++i) d[i] = static_cast<Dst>(s[i]);
      } else {
        for (int64_t i = 0; i < inner; ++i) d[i * ds] = static_cast<Dst>(s[i * ss]);
      }
    });
  });
}

}  // namespace shallow::cpu
