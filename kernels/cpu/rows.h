#pragma once
// Visiting the rows of a contiguous [outer, n, inner] block: the n-long lines that an op along
// one dim works on (softmax, L2 normalization). With inner == 1 rows are contiguous.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace shallow::cpu {

// Calls row(start, stride) for every row, threaded: the row's elements are at
// start + k * stride for k in [0, n). Chunks hold about `grain_elements` elements.
template <class RowFn>
void for_each_row(int64_t outer, int64_t n, int64_t inner, RowFn row,
                  int64_t grain_elements = 16384) {
  const int64_t grain = std::max<int64_t>(1, grain_elements / std::max<int64_t>(n, 1));
  if (inner == 1) {
    parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) row(o * n, int64_t(1));
    });
    return;
  }
  // Strided rows: consecutive rows of a chunk share cache lines, so a chunk walks them in order.
  parallel_for(0, outer * inner, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) row((r / inner) * n * inner + r % inner, inner);
  });
}

}  // namespace shallow::cpu
