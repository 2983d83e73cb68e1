#pragma once
// Reductions over the middle axis of a contiguous [outer, n, inner] block: the engine views
// any reduction over a run of adjacent dims this way (and permutes other cases into it).
#include <cstdint>

namespace shallow::cpu {

enum class ReduceOp { sum, max, min };

// y[o, i] = reduce_k x[o, k, i]; y is contiguous [outer, inner]. For max/min, `index`
// (if not null) receives the k of the first extreme value (NaN counts as the extreme).
template <class T>
void reduce(ReduceOp op, int64_t outer, int64_t n, int64_t inner, const T* x, T* y,
            int64_t* index = nullptr);

// Sum of squared deviations from `mean` ([outer, inner]) over the middle axis.
template <class T>
void sum_sq_dev(int64_t outer, int64_t n, int64_t inner, const T* x, const T* mean, T* y);

}  // namespace shallow::cpu
