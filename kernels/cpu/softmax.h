#pragma once
// Softmax and log-softmax along the middle axis of a contiguous [outer, n, inner] block (the
// engine views a softmax over any one dim this way). Each of the outer * inner rows is done in
// one fused pass set: max, sum of exp(x - max), normalize.
#include <cstdint>

namespace shallow::cpu {

// y = softmax(x) (or log_softmax when `log`) over the n axis.
template <class T>
void softmax(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log);

// Backward from the forward's output y:
//   softmax:      gx = y * (gy - sum(gy * y))
//   log_softmax:  gx = gy - exp(y) * sum(gy)
template <class T>
void softmax_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* gy, T* gx,
                      bool log);

}  // namespace shallow::cpu
