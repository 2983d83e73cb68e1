// The convolution's epilogue (conv.h, ConvEpilogue): a per-channel affine map, a residual and a
// ReLU over rows of outputs. One loop nest per combination, chosen once per call, so that GCC
// vectorizes the rows and nothing is decided per row: the implicit GEMM calls this for every
// register tile, where a tile of a 1x1 convolution with K = 64 costs only ~800 cycles.
#include "kernels/cpu/conv_paths.h"
#include "kernels/cpu/gemm_epilogue.h"

namespace shallow::cpu::conv_detail {
namespace {

using gemm_detail::relu;  // the GEMM epilogue's: NaN kept

// x * 1 + 0 is x exactly, so a missing scale or shift is passed as 1 or 0.
template <class T, bool Residual, bool Relu>
void finish(T* y, const T* residual, int64_t ldc, const T* scale, const T* shift, int64_t m,
            int64_t n) {
  for (int64_t i = 0; i < m; ++i) {
    const T a = scale ? scale[i] : T(1), b = shift ? shift[i] : T(0);
    T* row = y + i * ldc;
    const T* r = Residual ? residual + i * ldc : nullptr;
    for (int64_t j = 0; j < n; ++j) {
      T v = row[j] * a + b;
      if constexpr (Residual) v += r[j];
      row[j] = Relu ? relu(v) : v;
    }
  }
}

}  // namespace

template <class T>
void finish_outputs(T* y, const T* residual, int64_t ldc, int64_t c0, int64_t m, int64_t n,
                    const ConvEpilogue<T>& ep) {
  if (!ep.scale && !ep.shift && !residual && !ep.relu) return;
  const T* scale = ep.scale ? ep.scale + c0 : nullptr;
  const T* shift = ep.shift ? ep.shift + c0 : nullptr;
  if (residual)
    return ep.relu ? finish<T, true, true>(y, residual, ldc, scale, shift, m, n)
                   : finish<T, true, false>(y, residual, ldc, scale, shift, m, n);
  ep.relu ? finish<T, false, true>(y, nullptr, ldc, scale, shift, m, n)
          : finish<T, false, false>(y, nullptr, ldc, scale, shift, m, n);
}

template void finish_outputs<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t,
                                    const ConvEpilogue<float>&);
template void finish_outputs<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t,
                                     const ConvEpilogue<double>&);

}  // namespace shallow::cpu::conv_detail
