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
  parallel_for(0, groups, grain, [&](int64_t gb, int64_t ge) {
    for (int64_t grp = gb; grp < ge; ++grp) {
      const Philox4 r = philox(seed, offset + uint64_t(grp));
      const int64_t u_end = std::min(units, 4 * grp + 4);
      for (int64_t u = 4 * grp; u < u_end; ++u) {
        const bool keep = !drop_all && !(uniform01(r.v[u - 4 * grp]) < threshold);
        const T factor = keep ? scale : T(0);
        const T* xp = x + u * S;
        T* yp = y + u * S;
        for (int64_t j = 0; j < S; ++j) yp[j] = xp[j] * factor;
      }
    }
  });
}

template void dropout<float>(int64_t, int64_t, const float*, float*, double, uint64_t, uint64_t);
template void dropout<double>(int64_t, int64_t, const double*, double*, double, uint64_t, uint64_t);

}  // namespace shallow::cpu
