#include "engine/random.h"

#include <cmath>
#include <map>
#include <mutex>

#include "engine/cuda/random_ops.h"
#include "kernels/cpu/philox.h"

namespace shallow {

Generator& default_generator(Device d) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, Generator> gens;
  std::lock_guard<std::mutex> lock(mu);
  return gens[{int(d.type), d.index}];
}

void manual_seed(uint64_t seed) {
  default_generator(Device::cpu()).manual_seed(seed);
  for (int i = 0; i < 16; ++i) default_generator(Device::cuda(i)).manual_seed(seed);
}

namespace {

enum class Kind { uniform, normal };

// Element i draws from counter base + i on every device; the CPU computes in f64 and rounds,
// the CUDA kernel does the same per element.
Tensor draw(const Shape& shape, DType dtype, Device device, Generator* gen, Kind kind, double low,
            double high, const char* name) {
  SH_CHECK(dtype == DType::f32 || dtype == DType::f64, name,
           ": random tensors are f32 or f64, got ", dtype_name(dtype));
  Generator& g = gen ? *gen : default_generator(device);
  // Allocated before the counters are reserved: a bad shape or device draws nothing.
  Tensor t = Tensor::empty(shape, device.is_cuda() ? dtype : DType::f64, device);
  const int64_t n = t.numel();
  const uint64_t base = g.advance(uint64_t(n));
  if (device.is_cuda()) {
    if (kind == Kind::uniform) gpu::random_uniform(t, low, high, g.seed(), base, name);
    else gpu::random_normal(t, g.seed(), base, name);
    return t;
  }
  double* p = t.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    const cpu::Philox4 r = cpu::philox(g.seed(), base + uint64_t(i));
    const double u1 = cpu::uniform01_f64(r.v[0], r.v[1]);
    if (kind == Kind::uniform) {
      p[i] = low + (high - low) * u1;
    } else {  // Box-Muller on two uniforms from one counter
      const double u2 = cpu::uniform01_f64(r.v[2], r.v[3]);
      p[i] = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * M_PI * u2);
    }
  }
  return t.to(dtype);
}

}  // namespace

Tensor rand(const Shape& shape, DType dtype, Generator* gen) {
  return rand(shape, dtype, Device::cpu(), gen);
}
Tensor randn(const Shape& shape, DType dtype, Generator* gen) {
  return randn(shape, dtype, Device::cpu(), gen);
}
Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* gen) {
  return uniform(shape, low, high, dtype, Device::cpu(), gen);
}

Tensor rand(const Shape& shape, DType dtype, Device device, Generator* gen) {
  return draw(shape, dtype, device, gen, Kind::uniform, 0.0, 1.0, "rand");
}
Tensor randn(const Shape& shape, DType dtype, Device device, Generator* gen) {
  return draw(shape, dtype, device, gen, Kind::normal, 0.0, 1.0, "randn");
}
Tensor uniform(const Shape& shape, double low, double high, DType dtype, Device device,
               Generator* gen) {
  return draw(shape, dtype, device, gen, Kind::uniform, low, high, "uniform");
}

Tensor randperm(int64_t n, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Tensor t = Tensor::arange(n, DType::i64);
  int64_t* p = t.data<int64_t>();
  const uint64_t base = g.advance(uint64_t(std::max<int64_t>(n, 0)));
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates
    cpu::Philox4 r = cpu::philox(g.seed(), base + uint64_t(i));
    const uint64_t bits = (uint64_t(r.v[0]) << 32) | r.v[1];
    std::swap(p[i], p[int64_t(bits % uint64_t(i + 1))]);
  }
  return t;
}

}  // namespace shallow
