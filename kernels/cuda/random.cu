#include "kernels/cuda/random.h"

#include "kernels/cpu/philox.h"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

template <class T>
__global__ void random_fill_kernel(int64_t n, T* __restrict__ out, Distribution dist, double low,
                                   double high, uint64_t seed, uint64_t offset) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    const cpu::Philox4 r = cpu::philox(seed, offset + uint64_t(i));
    const double u1 = cpu::uniform01_f64(r.v[0], r.v[1]);
    double v;
    if (dist == Distribution::uniform) {
      v = low + (high - low) * u1;
    } else {
      const double u2 = cpu::uniform01_f64(r.v[2], r.v[3]);
      v = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * 3.14159265358979323846 * u2);
    }
    out[i] = T(v);
  }
}

}  // namespace

template <class T>
Status random_fill(int64_t n, T* out, Distribution dist, double low, double high, uint64_t seed,
                   uint64_t offset, cudaStream_t stream) {
  if (n <= 0) return ok_status();
  random_fill_kernel<T>
      <<<blocks_for(n), kThreads, 0, stream>>>(n, out, dist, low, high, seed, offset);
  return launch_status("random_fill_kernel");
}

template Status random_fill<float>(int64_t, float*, Distribution, double, double, uint64_t,
                                   uint64_t, cudaStream_t);
template Status random_fill<double>(int64_t, double*, Distribution, double, double, uint64_t,
                                    uint64_t, cudaStream_t);

}  // namespace shallow::cuda
