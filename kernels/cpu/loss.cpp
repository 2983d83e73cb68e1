#include "kernels/cpu/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {

int64_t row_grain(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

inline float exp_of(float v) { return fast_math::exp(v); }  // vectorizes (fast_math.h)
inline double exp_of(double v) { return std::exp(v); }

}  // namespace

template <class T>
void cross_entropy(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                   double smoothing, T* loss, T* lse) {
  const T s = T(smoothing), s_per_class = T(smoothing / double(classes));
  parallel_for(0, rows, row_grain(classes), [&](int64_t b, int64_t e) {
    std::vector<T> exps(static_cast<size_t>(classes));  // a row's e^(x - max), then summed
    for (int64_t r = b; r < e; ++r) {
      const T* x = logits + r * classes;
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j < classes; ++j) mx = std::max(mx, x[j]);
      for (int64_t j = 0; j < classes; ++j) exps[size_t(j)] = exp_of(x[j] - mx);
      const T total = fast_math::sum(exps.data(), classes), sum_x = fast_math::sum(x, classes);
      const T l = mx + std::log(total);
      lse[r] = l;
      // Written as a sum of -log p terms so that s = 0 never touches sum_x (which may be -inf).
      T value = (T(1) - s) * (l - x[target[r]]);
      if (s != T(0)) value += s_per_class * (T(classes) * l - sum_x);
      loss[r] = value;
    }
  });
}

template <class T>
void cross_entropy_backward(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                            double smoothing, const T* lse, const T* row_scale, T* gx) {
  const T s = T(smoothing), s_per_class = T(smoothing / double(classes));
  parallel_for(0, rows, row_grain(classes), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* x = logits + r * classes;
      T* g = gx + r * classes;
      const T l = lse[r], scale = row_scale[r];
      for (int64_t j = 0; j < classes; ++j) g[j] = scale * (exp_of(x[j] - l) - s_per_class);
      g[target[r]] -= scale * (T(1) - s);
    }
  });
}

// Rows in blocks of kColumnBlock lanes: each pass over the classes reads kColumnBlock
// consecutive values per class (a block of columns, about 256 KiB for 1024 classes, stays in L2
// for the next pass), and every inner loop runs over the block's rows, contiguous in memory.
constexpr int64_t kColumnBlock = 64;

template <class T>
void cross_entropy_columns(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                           double smoothing, T* loss, T* lse) {
  const T s = T(smoothing), s_per_class = T(smoothing / double(classes));
  const int64_t blocks = (rows + kColumnBlock - 1) / kColumnBlock;
  parallel_for(0, blocks, std::max<int64_t>(1, 16384 / std::max<int64_t>(classes * kColumnBlock, 1)),
               [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t r0 = blk * kColumnBlock, n = std::min(kColumnBlock, rows - r0);
      T mx[kColumnBlock], total[kColumnBlock], sum_x[kColumnBlock];
      std::fill(mx, mx + n, -std::numeric_limits<T>::infinity());
      std::fill(total, total + n, T(0));
      std::fill(sum_x, sum_x + n, T(0));
      for (int64_t j = 0; j < classes; ++j) {
        const T* x = logits + j * rows + r0;
        for (int64_t i = 0; i < n; ++i) mx[i] = std::max(mx[i], x[i]);
      }
      for (int64_t j = 0; j < classes; ++j) {
        const T* x = logits + j * rows + r0;
        for (int64_t i = 0; i < n; ++i) total[i] += exp_of(x[i] - mx[i]);
      }
      if (s != T(0))
        for (int64_t j = 0; j < classes; ++j) {
          const T* x = logits + j * rows + r0;
          for (int64_t i = 0; i < n; ++i) sum_x[i] += x[i];
        }
      for (int64_t i = 0; i < n; ++i) {
        const int64_t r = r0 + i;
        const T l = mx[i] + std::log(total[i]);
        lse[r] = l;
        T value = (T(1) - s) * (l - logits[target[r] * rows + r]);
        if (s != T(0)) value += s_per_class * (T(classes) * l - sum_x[i]);
        loss[r] = value;
      }
    }
  });
}

template <class T>
void cross_entropy_columns_backward(int64_t rows, int64_t classes, const T* logits,
                                    const int64_t* target, double smoothing, const T* lse,
                                    const T* row_scale, T* gx) {
  const T s = T(smoothing), s_per_class = T(smoothing / double(classes));
  const int64_t blocks = (rows + kColumnBlock - 1) / kColumnBlock;
  parallel_for(0, blocks, std::max<int64_t>(1, 16384 / std::max<int64_t>(classes * kColumnBlock, 1)),
               [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t r0 = blk * kColumnBlock, n = std::min(kColumnBlock, rows - r0);
      const T* l = lse + r0;
      const T* scale = row_scale + r0;
      for (int64_t j = 0; j < classes; ++j) {
        const T* x = logits + j * rows + r0;
        T* g = gx + j * rows + r0;
        for (int64_t i = 0; i < n; ++i) g[i] = scale[i] * (exp_of(x[i] - l[i]) - s_per_class);
      }
      for (int64_t i = 0; i < n; ++i) gx[target[r0 + i] * rows + r0 + i] -= scale[i] * (T(1) - s);
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
