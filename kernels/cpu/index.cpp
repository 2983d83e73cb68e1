#include "kernels/cpu/index.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {

constexpr int64_t kWork = 16384;  // elements per chunk handed to a thread, roughly

// The accumulating kernels split the [outer, inner] plane into tiles of columns: every write
// to dst[o, *, i] comes from the tile holding (o, i), so threads never write the same element
// and each sum is taken in index order (the same result on any thread count).
constexpr int64_t kTile = 256;

template <class Fn>
void for_each_tile(int64_t outer, int64_t inner, int64_t n_index, Fn fn) {
  const int64_t tiles_per_row = (inner + kTile - 1) / kTile;
  const int64_t tiles = outer * tiles_per_row;
  const int64_t per_tile = std::max<int64_t>(1, n_index * std::min(inner, kTile));
  parallel_for(0, tiles, std::max<int64_t>(1, kWork / per_tile), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / tiles_per_row, i0 = (t % tiles_per_row) * kTile;
      fn(o, i0, std::min(inner, i0 + kTile));
    }
  });
}

}  // namespace

template <class I>
int64_t first_out_of_range(int64_t n, const I* index, int64_t size) {
  for (int64_t k = 0; k < n; ++k)
    if (index[k] < 0 || int64_t(index[k]) >= size) return k;
  return -1;
}

template <class T, class I>
void index_select(int64_t outer, int64_t n_src, int64_t inner, const T* src, int64_t n_index,
                  const I* index, T* out) {
  const int64_t rows = outer * n_index;
  if (rows == 0 || inner == 0) return;
  parallel_for(0, rows, std::max<int64_t>(1, kWork / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / n_index, k = r % n_index;
      std::memcpy(out + r * inner, src + (o * n_src + int64_t(index[k])) * inner,
                  size_t(inner) * sizeof(T));
    }
  });
}

template <class T, class I>
void index_add(int64_t outer, int64_t n_dst, int64_t inner, T* dst, int64_t n_index,
               const I* index, const T* src) {
  if (outer == 0 || inner == 0) return;
  for_each_tile(outer, inner, n_index, [&](int64_t o, int64_t i0, int64_t i1) {
    for (int64_t k = 0; k < n_index; ++k) {
      T* d = dst + (o * n_dst + int64_t(index[k])) * inner;
      const T* s = src + (o * n_index + k) * inner;
      for (int64_t i = i0; i < i1; ++i) d[i] += s[i];
    }
  });
}

template <class T, class I>
void gather(int64_t outer, int64_t n_src, int64_t inner, const T* src, int64_t n_index,
            const I* index, T* out) {
  const int64_t rows = outer * n_index;
  if (rows == 0 || inner == 0) return;
  parallel_for(0, rows, std::max<int64_t>(1, kWork / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* s = src + (r / n_index) * n_src * inner;
      const I* idx = index + r * inner;
      T* po = out + r * inner;
      for (int64_t i = 0; i < inner; ++i) po[i] = s[int64_t(idx[i]) * inner + i];
    }
  });
}

template <class T, class I>
void scatter_add(int64_t outer, int64_t n_dst, int64_t inner, T* dst, int64_t n_index,
                 const I* index, const T* src) {
  if (outer == 0 || inner == 0) return;
  for_each_tile(outer, inner, n_index, [&](int64_t o, int64_t i0, int64_t i1) {
    T* d = dst + o * n_dst * inner;
    for (int64_t k = 0; k < n_index; ++k) {
      const int64_t row = (o * n_index + k) * inner;
      for (int64_t i = i0; i < i1; ++i) d[int64_t(index[row + i]) * inner + i] += src[row + i];
    }
  });
}

template <class T, class C>
void where(int ndim, const int64_t* shape, const C* cond, const int64_t* sc, const T* a,
           const int64_t* sa, const T* b, const int64_t* sb, T* out) {
  if (ndim == 0) {
    out[0] = cond[0] != C(0) ? a[0] : b[0];
    return;
  }
  const int64_t inner = shape[ndim - 1];
  int64_t rows = 1;
  for (int d = 0; d + 1 < ndim; ++d) rows *= shape[d];
  if (rows == 0 || inner == 0) return;
  const int64_t ic = sc[ndim - 1], ia = sa[ndim - 1], ib = sb[ndim - 1];
  parallel_for(0, rows, std::max<int64_t>(1, kWork / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t oc = 0, oa = 0, ob = 0, rem = r;
      for (int d = ndim - 2; d >= 0; --d) {
        const int64_t i = rem % shape[d];
        rem /= shape[d];
        oc += i * sc[d];
        oa += i * sa[d];
        ob += i * sb[d];
      }
      T* po = out + r * inner;
      for (int64_t i = 0; i < inner; ++i)
        po[i] = cond[oc + i * ic] != C(0) ? a[oa + i * ia] : b[ob + i * ib];
    }
  });
}

// ---- instantiations

template int64_t first_out_of_range<int32_t>(int64_t, const int32_t*, int64_t);
template int64_t first_out_of_range<int64_t>(int64_t, const int64_t*, int64_t);

#define SH_INDEX_MOVE(T, I)                                                                    \
  template void index_select<T, I>(int64_t, int64_t, int64_t, const T*, int64_t, const I*, T*); \
  template void gather<T, I>(int64_t, int64_t, int64_t, const T*, int64_t, const I*, T*);
#define SH_INDEX_ADD(T, I)                                                                 \
  template void index_add<T, I>(int64_t, int64_t, int64_t, T*, int64_t, const I*, const T*); \
  template void scatter_add<T, I>(int64_t, int64_t, int64_t, T*, int64_t, const I*, const T*);
#define SH_WHERE(T, C)                                                                        \
  template void where<T, C>(int, const int64_t*, const C*, const int64_t*, const T*,          \
                            const int64_t*, const T*, const int64_t*, T*);

SH_INDEX_MOVE(uint8_t, int32_t)
SH_INDEX_MOVE(uint8_t, int64_t)
SH_INDEX_MOVE(uint16_t, int32_t)
SH_INDEX_MOVE(uint16_t, int64_t)
SH_INDEX_MOVE(uint32_t, int32_t)
SH_INDEX_MOVE(uint32_t, int64_t)
SH_INDEX_MOVE(uint64_t, int32_t)
SH_INDEX_MOVE(uint64_t, int64_t)
SH_INDEX_ADD(float, int32_t)
SH_INDEX_ADD(float, int64_t)
SH_INDEX_ADD(double, int32_t)
SH_INDEX_ADD(double, int64_t)
SH_WHERE(uint8_t, uint8_t)
SH_WHERE(uint8_t, float)
SH_WHERE(uint8_t, double)
SH_WHERE(uint16_t, uint8_t)
SH_WHERE(uint16_t, float)
SH_WHERE(uint16_t, double)
SH_WHERE(uint32_t, uint8_t)
SH_WHERE(uint32_t, float)
SH_WHERE(uint32_t, double)
SH_WHERE(uint64_t, uint8_t)
SH_WHERE(uint64_t, float)
SH_WHERE(uint64_t, double)

#undef SH_INDEX_MOVE
#undef SH_INDEX_ADD
#undef SH_WHERE

}  // namespace shallow::cpu
