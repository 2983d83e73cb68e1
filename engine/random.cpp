#include "engine/random.h"

#include <cmath>
#include <map>
#include <mutex>

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

template <class T, class Fill>
Tensor draw(const Shape& shape, DType dtype, Generator* gen, Fill fill) {
  SH_CHECK(dtype == DType::f32 || dtype == DType::f64, "random tensors are f32 or f64, got ",
           dtype_name(dtype));
  Generator& g = gen ? *gen : default_generator();
  Tensor t = Tensor::empty(shape, DType::f64);
  const int64_t n = t.numel();
  const uint64_t base = g.advance(uint64_t(n));
  double* p = t.data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = fill(cpu::philox(g.seed(), base + uint64_t(i)));
  return t.to(dtype);
}

}  // namespace

Tensor rand(const Shape& shape, DType dtype, Generator* gen) {
  return draw<double>(shape, dtype, gen,
                      [](cpu::Philox4 r) { return cpu::uniform01_f64(r.v[0], r.v[1]); });
}

Tensor randn(const Shape& shape, DType dtype, Generator* gen) {
  // Box-Muller on two uniforms from one counter.
  return draw<double>(shape, dtype, gen, [](cpu::Philox4 r) {
    double u1 = cpu::uniform01_f64(r.v[0], r.v[1]);
    double u2 = cpu::uniform01_f64(r.v[2], r.v[3]);
    return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * M_PI * u2);
  });
}

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* gen) {
  return draw<double>(shape, dtype, gen, [=](cpu::Philox4 r) {
    return low + (high - low) * cpu::uniform01_f64(r.v[0], r.v[1]);
  });
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
