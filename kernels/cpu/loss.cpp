#include "kernels/cpu/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/lane_reduce.h"
#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {

int64_t row_grain(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

// A row's loss from its log-sum-exp l, its target's logit and (with smoothing s) the sum of its
// logits: written as a sum of -log p terms so that s = 0 never touches sum_x (which may be -inf).
template <class T>
inline T row_loss(int64_t classes, T l, T x_target, T sum_x, T s, T s_per_class) {
  T value = (T(1) - s) * (l - x_target);
  if (s != T(0)) value += s_per_class * (T(classes) * l - sum_x);
  return value;
}

// One row's loss and log-sum-exp; `exps` has room for the row. Functions of their own rather
// than bodies of the parallel_for lambdas: GCC vectorizes their loops only here.
template <class T>
void cross_entropy_row(int64_t classes, const T* __restrict x, int64_t target, T s,
                       T s_per_class, T* __restrict exps, T& loss, T& lse) {
  const T mx = lane_reduce::max(x, classes, -std::numeric_limits<T>::infinity());
  for (int64_t j = 0; j < classes; ++j) exps[j] = fast_math::exp(x[j] - mx);
  const T l = mx + std::log(lane_reduce::sum(exps, classes));
  lse = l;
  const T sum_x = s != T(0) ? lane_reduce::sum(x, classes) : T(0);
  loss = row_loss(classes, l, x[target], sum_x, s, s_per_class);
}

template <class T>
void cross_entropy_row_backward(int64_t classes, const T* __restrict x, int64_t target, T s,
                                T s_per_class, T l, T scale, T* __restrict g) {
  for (int64_t j = 0; j < classes; ++j) g[j] = scale * (fast_math::exp(x[j] - l) - s_per_class);
  g[target] -= scale * (T(1) - s);
}

// Rows in blocks of kColumnBlock lanes: each pass over the classes reads kColumnBlock
// consecutive values per class (a block of columns, about 256 KiB for 1024 classes, stays in L2
// for the next pass), and every inner loop runs over the block's rows, contiguous in memory.
constexpr int64_t kColumnBlock = 64;

// One block of n <= kColumnBlock rows starting at r0. A function of its own rather than the
// body of the parallel_for lambda: GCC vectorizes its loops over the rows only here.
template <class T>
void cross_entropy_columns_block(int64_t rows, int64_t classes, int64_t r0, int64_t n,
                                 const T* __restrict logits, const int64_t* target, T s,
                                 T s_per_class, T* loss, T* lse) {
  T mx[kColumnBlock], total[kColumnBlock], sum_x[kColumnBlock];
  for (int64_t i = 0; i < n; ++i) {
    mx[i] = -std::numeric_limits<T>::infinity();
    total[i] = T(0);
    sum_x[i] = T(0);
  }
  for (int64_t j = 0; j < classes; ++j) {
    const T* __restrict x = logits + j * rows + r0;
    // std::max's (running < v ? v : running), written out: through its references GCC does
    // not vectorize the loop.
    for (int64_t i = 0; i < n; ++i) mx[i] = mx[i] < x[i] ? x[i] : mx[i];
  }
  for (int64_t j = 0; j < classes; ++j) {
    const T* __restrict x = logits + j * rows + r0;
    for (int64_t i = 0; i < n; ++i) total[i] += fast_math::exp(x[i] - mx[i]);
  }
  if (s != T(0))
    for (int64_t j = 0; j < classes; ++j) {
      const T* __restrict x = logits + j * rows + r0;
      for (int64_t i = 0; i < n; ++i) sum_x[i] += x[i];
    }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = r0 + i;
    const T l = mx[i] + std::log(total[i]);
    lse[r] = l;
    loss[r] = row_loss(classes, l, logits[target[r] * rows + r], sum_x[i], s, s_per_class);
  }
}

template <class T>
void cross_entropy_columns_backward_block(int64_t rows, int64_t classes, int64_t r0, int64_t n,
                                          const T* __restrict logits, const int64_t* target, T s,
                                          T s_per_class, const T* __restrict lse,
                                          const T* __restrict row_scale, T* __restrict gx) {
  const T* l = lse + r0;
  const T* scale = row_scale + r0;
  for (int64_t j = 0; j < classes; ++j) {
    const T* __restrict x = logits + j * rows + r0;
    T* __restrict g = gx + j * rows + r0;
    for (int64_t i = 0; i < n; ++i) g[i] = scale[i] * (fast_math::exp(x[i] - l[i]) - s_per_class);
  }
  for (int64_t i = 0; i < n; ++i) gx[target[r0 + i] * rows + r0 + i] -= scale[i] * (T(1) - s);
}

}  // namespace

template <class T>
void cross_entropy(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                   double smoothing, T* loss, T* lse) {
  const T s = T(smoothing), s_per_class = T(smoothing / double(classes));
  parallel_for(0, rows, row_grain(classes), [&](int64_t b, int64_t e) {
    std::vector<T> exps(static_cast<size_t>(classes));  // a row's e^(x - max), then summed
    for (int64_t r = b; r < e; ++r)
      cross_entropy_row(classes, logits + r * classes, target[r], s, s_per_class, exps.data(),
                        loss[r], lse[r]);
  });
}

template <class T>
void cross_entropy_backward(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                            double smoothing, const T* lse, const T* row_scale, T* gx) {
  const T s = T(smoothing), s_per_class = T(smoothing / double(classes));
  parallel_for(0, rows, row_grain(classes), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      cross_entropy_row_backward(classes, logits + r * classes, target[r], s, s_per_class, lse[r],
                                 row_scale[r], gx + r * classes);
  });
}

template <class T>
void cross_entropy_columns(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                           double smoothing, T* loss, T* lse) {
  const T s = T(smoothing), s_per_class = T(smoothing / double(classes));
  const int64_t blocks = (rows + kColumnBlock - 1) / kColumnBlock;
  parallel_for(0, blocks, row_grain(classes * kColumnBlock), [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t r0 = blk * kColumnBlock;
      cross_entropy_columns_block(rows, classes, r0, std::min(kColumnBlock, rows - r0), logits,
                                  target, s, s_per_class, loss, lse);
    }
  });
}

template <class T>
void cross_entropy_columns_backward(int64_t rows, int64_t classes, const T* logits,
                                    const int64_t* target, double smoothing, const T* lse,
                                    const T* row_scale, T* gx) {
  const T s = T(smoothing), s_per_class = T(smoothing / double(classes));
  const int64_t blocks = (rows + kColumnBlock - 1) / kColumnBlock;
  parallel_for(0, blocks, row_grain(classes * kColumnBlock), [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t r0 = blk * kColumnBlock;
      cross_entropy_columns_backward_block(rows, classes, r0, std::min(kColumnBlock, rows - r0),
                                           logits, target, s, s_per_class, lse, row_scale, gx);
    }
  });
}

template void cross_entropy<float>(int64_t, int64_t, const float*, const int64_t*, double, float*,
                                   float*);
template void cross_entropy<double>(int64_t, int64_t, const double*, const int64_t*, double,
                                    double*, double*);
template void cross_entropy_backward<float>(int64_t, int64_t, const float*, const int64_t*, double,
                                            const float*, const float*, float*);
template void cross_entropy_backward<double>(int64_t, int64_t, const double*, const int64_t*,
                                             double, const double*, const double*, double*);

template void cross_entropy_columns<float>(int64_t, int64_t, const float*, const int64_t*, double,
                                           float*, float*);
template void cross_entropy_columns<double>(int64_t, int64_t, const double*, const int64_t*,
                                            double, double*, double*);
template void cross_entropy_columns_backward<float>(int64_t, int64_t, const float*,
                                                    const int64_t*, double, const float*,
                                                    const float*, float*);
template void cross_entropy_columns_backward<double>(int64_t, int64_t, const double*,
                                                     const int64_t*, double, const double*,
                                                     const double*, double*);

}  // namespace shallow::cpu
