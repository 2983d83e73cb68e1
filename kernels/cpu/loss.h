#pragma once
// Cross-entropy from logits over contiguous rows [rows, classes] with class-index targets.
#include <cstdint>

namespace shallow::cpu {

// Per row r with target t and smoothing s (as torch: the target distribution is
// (1 - s) * onehot(t) + s / C):
//   loss[r] = lse - (1 - s) * x[t] - (s / C) * sum_j x[j],  lse = log(sum_j exp(x[j]))
// lse ([rows]) is saved for the backward. Targets must be in [0, classes).
template <class T>
void cross_entropy(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                   double smoothing, T* loss, T* lse);

// gx[r, j] = row_scale[r] * (softmax(x)[r, j] - (1 - s) * [j == t] - s / C).
template <class T>
void cross_entropy_backward(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                            double smoothing, const T* lse, const T* row_scale, T* gx);

}  // namespace shallow::cpu
