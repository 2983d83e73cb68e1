// The convolution's epilogue (conv.h, ConvEpilogue): a per-channel affine map, a residual and a
// ReLU over rows of outputs. Each variant is a loop of its own so that GCC vectorizes it.
#include "kernels/cpu/conv_paths.h"

namespace shallow::cpu::conv_detail {
namespace {

template <class T>
T relu(T v) {
  return v > T(0) ? v : (v != v ? v : T(0));
}

template <class T>
void affine_row(T* y, int64_t n, T scale, T shift) {
  for (int64_t j = 0; j < n; ++j) y[j] = y[j] * scale + shift;
}

template <class T>
void affine_relu_row(T* y, int64_t n, T scale, T shift) {
  for (int64_t j = 0; j < n; ++j) y[j] = relu(y[j] * scale + shift);
}

template <class T>
void affine_add_row(T* y, const T* r, int64_t n, T scale, T shift) {
  for (int64_t j = 0; j < n; ++j) y[j] = (y[j] * scale + shift) + r[j];
}

template <class T>
void affine_add_relu_row(T* y, const T* r, int64_t n, T scale, T shift) {
  for (int64_t j = 0; j < n; ++j) y[j] = relu((y[j] * scale + shift) + r[j]);
}

}  // namespace

template <class T>
void finish_outputs(T* y, const T* residual, int64_t ldc, int64_t c0, int64_t m, int64_t n,
                    const ConvEpilogue<T>& ep) {
  if (!ep.scale && !ep.shift && !residual && !ep.relu) return;
  for (int64_t i = 0; i < m; ++i) {
    // x * 1 + 0 is x exactly, so the missing parts cost time only.
    const T scale = ep.scale ? ep.scale[c0 + i] : T(1), shift = ep.shift ? ep.shift[c0 + i] : T(0);
    T* row = y + i * ldc;
    if (residual) {
      const T* r = residual + i * ldc;
      ep.relu ? affine_add_relu_row(row, r, n, scale, shift) : affine_add_row(row, r, n, scale, shift);
    } else {
      ep.relu ? affine_relu_row(row, n, scale, shift) : affine_row(row, n, scale, shift);
    }
  }
}

template void finish_outputs<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t,
                                    const ConvEpilogue<float>&);
template void finish_outputs<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t,
                                     const ConvEpilogue<double>&);

}  // namespace shallow::cpu::conv_detail
