#pragma once
// Cross-entropy from logits over contiguous rows [rows, classes] with class-index targets, or
// over columns: logits stored [classes, rows] (the transpose of a contiguous matrix, as
// CLIP's loss reads logits.t()).
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

// The same two with the logits (and gx) stored by class: element (r, j) at j * rows + r. The
// rows run in vector lanes; results agree with the row kernels up to the order of summation.
template <class T>
void cross_entropy_columns(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                           double smoothing, T* loss, T* lse);
template <class T>
void cross_entropy_columns_backward(int64_t rows, int64_t classes, const T* logits,
                                    const int64_t* target, double smoothing, const T* lse,
                                    const T* row_scale, T* gx);

}  // namespace shallow::cpu
