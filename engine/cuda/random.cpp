// Random fills and dropout on CUDA tensors.
#include "engine/cuda/random_ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/dropout.h"
#include "kernels/cuda/random.h"

namespace shallow::gpu {
namespace {

void fill(Tensor& out, cuda::Distribution dist, double low, double high, uint64_t seed,
          uint64_t offset, const char* name) {
  cudaStream_t stream = stream_for(out.device(), name);
  SH_DISPATCH_FLOAT(out.dtype(), name, [&] {
    check(cuda::random_fill<scalar_t>(out.numel(), out.data<scalar_t>(), dist, low, high, seed,
                                      offset, stream),
          name);
  });
}

}  // namespace

void random_uniform(Tensor& out, double low, double high, uint64_t seed, uint64_t offset,
                    const char* name) {
  fill(out, cuda::Distribution::uniform, low, high, seed, offset, name);
}

void random_normal(Tensor& out, uint64_t seed, uint64_t offset, const char* name) {
  fill(out, cuda::Distribution::normal, 0.0, 1.0, seed, offset, name);
}

void dropout(int64_t units, int64_t S, const Tensor& x, Tensor& y, double p, uint64_t seed,
             uint64_t offset, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::dropout<scalar_t>(units, S, x.data<scalar_t>(), y.data<scalar_t>(), p, seed, offset,
                                  stream),
          name);
  });
}

}  // namespace shallow::gpu
