#include "kernels/cpu/reduce.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace shallow::cpu {

template <class T>
void reduce(ReduceOp op, int64_t outer, int64_t n, int64_t inner, const T* x, T* y,
            int64_t* index) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, n * inner));
  parallel_for(0, outer, grain, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const T* xo = x + o * n * inner;
      T* yo = y + o * inner;
      if (op == ReduceOp::sum) {
        if (inner == 1) {
          // Pairwise-friendly: several accumulators so the compiler can vectorize.
          T acc[8] = {};
          int64_t k = 0;
          for (; k + 8 <= n; k += 8)
            for (int j = 0; j < 8; ++j) acc[j] += xo[k + j];
          T s = 0;
          for (; k < n; ++k) s += xo[k];
          for (int j = 0; j < 8; ++j) s += acc[j];
          yo[0] = s;
        } else {
          std::fill(yo, yo + inner, T(0));
          for (int64_t k = 0; k < n; ++k) {
            const T* row = xo + k * inner;
            for (int64_t i = 0; i < inner; ++i) yo[i] += row[i];
          }
        }
        continue;
      }
      const bool is_max = op == ReduceOp::max;
      int64_t* io = index ? index + o * inner : nullptr;
      for (int64_t i = 0; i < inner; ++i) {
        T best = xo[i];
        int64_t arg = 0;
        for (int64_t k = 1; k < n && best == best; ++k) {
          T v = xo[k * inner + i];
          if (v != v || (is_max ? v > best : v < best)) { best = v; arg = k; }
        }
        yo[i] = best;
        if (io) io[i] = arg;
      }
    }
  });
}

template <class T>
void sum_sq_dev(int64_t outer, int64_t n, int64_t inner, const T* x, const T* mean, T* y) {
  parallel_for(0, outer, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const T* xo = x + o * n * inner;
      const T* mo = mean + o * inner;
      T* yo = y + o * inner;
      std::fill(yo, yo + inner, T(0));
      for (int64_t k = 0; k < n; ++k)
        for (int64_t i = 0; i < inner; ++i) {
          T d = xo[k * inner + i] - mo[i];
          yo[i] += d * d;
        }
    }
  });
}

template void reduce<float>(ReduceOp, int64_t, int64_t, int64_t, const float*, float*, int64_t*);
template void reduce<double>(ReduceOp, int64_t, int64_t, int64_t, const double*, double*, int64_t*);
template void sum_sq_dev<float>(int64_t, int64_t, int64_t, const float*, const float*, float*);
template void sum_sq_dev<double>(int64_t, int64_t, int64_t, const double*, const double*, double*);

}  // namespace shallow::cpu
