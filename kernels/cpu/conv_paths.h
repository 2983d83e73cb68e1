#pragma once
// The direct convolution paths that conv.cpp dispatches to by shape (conv.h says which shapes
// take which). Internal to the conv kernels.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/conv.h"

namespace shallow::cpu::conv_detail {

// Elements of work below which a loop is not worth splitting across threads.
constexpr int64_t kGrainElems = 32768;

inline int64_t grain_for(int64_t elems_per_item) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, elems_per_item));
}

// The outputs o in [0, n_out) whose input position o * stride + offset lies in [0, n_in).
// Hoisting this range out of the inner loops leaves them without bounds checks.
struct Range {
  int64_t begin, end;
};

inline Range valid_outputs(int64_t offset, int64_t stride, int64_t n_in, int64_t n_out) {
  const int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t last = n_in - 1 - offset;  // largest allowed o * stride
  const int64_t hi = last < 0 ? 0 : last / stride + 1;
  const int64_t b = std::min(lo, n_out);
  return {b, std::clamp(hi, b, n_out)};
}

// columns: image n's column matrix is x[n] viewed [C_in * kH, H_out * W_out].
template <class T>
void columns_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y);
template <class T>
void columns_backward_input(const Conv2dShape& s, const T* gy, const T* w, T* gx);
template <class T>
void columns_backward_weight(const Conv2dShape& s, const T* gy, const T* x, T* gw);

// implicit_gemm: one GEMM over the batch whose column matrix is packed straight from the input
// (conv_gemm.cpp); forward only.
template <class T>
void implicit_gemm_forward(const Conv2dShape& s, const T* x, const T* w,
                           const ConvEpilogue<T>& ep, T* y);

// Applies the epilogue to m rows (output channels c0 .. c0 + m - 1) of n outputs each, rows
// ldc apart, y pointing at the first; `residual` at the same place in the residual (or null).
template <class T>
void finish_outputs(T* y, const T* residual, int64_t ldc, int64_t c0, int64_t m, int64_t n,
                    const ConvEpilogue<T>& ep);

// rows: output row (n, oh) sums its input rows, each read at the kW tap offsets.
template <class T>
void rows_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y);
template <class T>
void rows_backward_weight(const Conv2dShape& s, const T* gy, const T* x, T* gw);

}  // namespace shallow::cpu::conv_detail
