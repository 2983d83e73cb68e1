#include "kernels/cuda/dropout.h"

#include "kernels/cpu/philox.h"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// One thread per (group of four units, position j in a unit): one Philox call decides the
// four units, and neighbouring threads touch neighbouring elements of a unit when S > 1.
template <class T>
__global__ void dropout_kernel(int64_t units, int64_t S, const T* __restrict__ x, T* __restrict__ y,
                               float threshold, bool drop_all, T scale, uint64_t seed,
                               uint64_t offset) {
  const int64_t groups = (units + 3) / 4;
  const int64_t total = groups * S;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int64_t group = t / S, j = t % S;
    const cpu::Philox4 r = cpu::philox(seed, offset + uint64_t(group));
    for (int q = 0; q < 4; ++q) {
      const int64_t u = 4 * group + q;
      if (u >= units) break;
      const bool keep = !drop_all && !(cpu::uniform01(r.v[q]) < threshold);
      const int64_t at = u * S + j;
      y[at] = x[at] * (keep ? scale : T(0));
    }
  }
}

}  // namespace

template <class T>
Status dropout(int64_t units, int64_t S, const T* x, T* y, double p, uint64_t seed, uint64_t offset,
               cudaStream_t stream) {
  if (units <= 0 || S <= 0) return ok_status();
  const bool drop_all = p >= 1.0;
  const T scale = drop_all ? T(0) : T(1.0 / (1.0 - p));
  const int64_t total = (units + 3) / 4 * S;
  dropout_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(units, S, x, y, float(p), drop_all,
                                                                scale, seed, offset);
  return launch_status("dropout_kernel");
}

template Status dropout<float>(int64_t, int64_t, const float*, float*, double, uint64_t, uint64_t,
                               cudaStream_t);
template Status dropout<double>(int64_t, int64_t, const double*, double*, double, uint64_t,
                                uint64_t, cudaStream_t);

}  // namespace shallow::cuda
