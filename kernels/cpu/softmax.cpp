#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/lane_reduce.h"
#include "kernels/cpu/rows.h"

namespace shallow::cpu {
namespace {

// One row of n elements, `stride` apart. Called with stride 1 for the common case: there the
// loops are contiguous and vectorize, the exponentials summed in vector lanes. The
// exponentials go to y first (log-softmax then overwrites them).
template <class T>
inline void softmax_row(int64_t n, int64_t stride, const T* x, T* y, bool log) {
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t k = 0; k < n; ++k) mx = std::max(mx, x[k * stride]);
  for (int64_t k = 0; k < n; ++k) y[k * stride] = fast_math::exp(x[k * stride] - mx);
  T total = 0;
  if (stride == 1) {
    total = lane_reduce::sum(y, n);
  } else {
    for (int64_t k = 0; k < n; ++k) total += y[k * stride];
  }
  if (log) {
    const T shift = mx + std::log(total);
    for (int64_t k = 0; k < n; ++k) y[k * stride] = x[k * stride] - shift;
  } else {
    const T scale = T(1) / total;
    for (int64_t k = 0; k < n; ++k) y[k * stride] *= scale;
  }
}

template <class T>
inline void softmax_backward_row(int64_t n, int64_t stride, const T* y, const T* gy, T* gx,
                                 bool log) {
  T dot = 0;
  if (log) {
    for (int64_t k = 0; k < n; ++k) dot += gy[k * stride];
    for (int64_t k = 0; k < n; ++k) gx[k * stride] = gy[k * stride] - fast_math::exp(y[k * stride]) * dot;
  } else {
    for (int64_t k = 0; k < n; ++k) dot += gy[k * stride] * y[k * stride];
    for (int64_t k = 0; k < n; ++k) gx[k * stride] = y[k * stride] * (gy[k * stride] - dot);
  }
}

}  // namespace

template <class T>
void softmax(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
  for_each_row(outer, n, inner, [&](int64_t start, int64_t stride) {
    if (stride == 1)
      softmax_row<T>(n, 1, x + start, y + start, log);
    else
      softmax_row<T>(n, stride, x + start, y + start, log);
  });
}

template <class T>
void softmax_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* gy, T* gx,
                      bool log) {
  for_each_row(outer, n, inner, [&](int64_t start, int64_t stride) {
    if (stride == 1)
      softmax_backward_row<T>(n, 1, y + start, gy + start, gx + start, log);
    else
      softmax_backward_row<T>(n, stride, y + start, gy + start, gx + start, log);
  });
}

template void softmax<float>(int64_t, int64_t, int64_t, const float*, float*, bool);
template void softmax<double>(int64_t, int64_t, int64_t, const double*, double*, bool);
template void softmax_backward<float>(int64_t, int64_t, int64_t, const float*, const float*, float*,
                                      bool);
template void softmax_backward<double>(int64_t, int64_t, int64_t, const double*, const double*,
                                       double*, bool);

}  // namespace shallow::cpu
