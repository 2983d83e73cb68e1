#include "kernels/cpu/dropout.h"

#include <algorithm>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/philox.h"

namespace shallow::cpu {

template <class T>
void dropout(int64_t units, int64_t S, const T* x, T* y, double p, uint64_t seed, uint64_t offset) {
  const T scale = p >= 1.0 ? T(0) : T(1.0 / (1.0 - p));
  // A unit is dropped when its uniform draw u in [0, 1) falls below p.
  const float threshold = float(p);
  const bool drop_all = p >= 1.0;
  // Work in groups of four units: one Philox call gives all four decisions.
  const int64_t groups = (units + 3) / 4;
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(4 * S, 1));
  auto apply = [&](int64_t u, uint32_t bits) {
    const bool keep = !drop_all && !(uniform01(bits) < threshold);
    const T factor = keep ? scale : T(0);
    const T* xp = x + u * S;
    T* yp = y + u * S;
    for (int64_t j = 0; j < S; ++j) yp[j] = xp[j] * factor;
  };
  parallel_for(0, groups, grain, [&](int64_t gb, int64_t ge) {
    int64_t grp = gb;
    // 16 groups (64 units) per Philox batch, the rest one group at a time: the same draws.
    for (; grp + 16 <= ge; grp += 16) {
      uint32_t r[4][16];
      philox16(seed, offset + uint64_t(grp), r);
      if (S == 1 && 4 * (grp + 16) <= units) {  // elementwise dropout, a whole batch of 64
        const T* xp = x + 4 * grp;
        T* yp = y + 4 * grp;
        for (int l = 0; l < 16; ++l)
          for (int w = 0; w < 4; ++w) {
            const bool keep = !drop_all && !(uniform01(r[w][l]) < threshold);
            yp[4 * l + w] = xp[4 * l + w] * (keep ? scale : T(0));
          }
        continue;
      }
      for (int l = 0; l < 16; ++l) {
        const int64_t u0 = 4 * (grp + l), u_end = std::min(units, u0 + 4);
        for (int64_t u = u0; u < u_end; ++u) apply(u, r[u - u0][l]);
      }
    }
    for (; grp < ge; ++grp) {
      const Philox4 r = philox(seed, offset + uint64_t(grp));
      const int64_t u_end = std::min(units, 4 * grp + 4);
      for (int64_t u = 4 * grp; u < u_end; ++u) apply(u, r.v[u - 4 * grp]);
    }
  });
}

template void dropout<float>(int64_t, int64_t, const float*, float*, double, uint64_t, uint64_t);
template void dropout<double>(int64_t, int64_t, const double*, double*, double, uint64_t, uint64_t);

}  // namespace shallow::cpu
