#pragma once
// One seeded generator per device. Draws consume a counter, so a run with the same seed and
// the same sequence of ops gives the same numbers on any thread count.
#include <cstdint>

#include "engine/tensor.h"

namespace shallow {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) { seed_ = seed; offset_ = 0; }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t o) { offset_ = o; }  // restores a saved state (checkpoints)
  // Reserves n counters and returns the first.
  uint64_t advance(uint64_t n) { uint64_t o = offset_; offset_ += n; return o; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator(Device d = Device::cpu());
void manual_seed(uint64_t seed);  // seeds every device's generator

// Random tensors (f32 or f64), drawn from the device's default generator unless one is given.
Tensor rand(const Shape& shape, DType dtype = DType::f32, Generator* gen = nullptr);   // U[0,1)
Tensor randn(const Shape& shape, DType dtype = DType::f32, Generator* gen = nullptr);  // N(0,1)
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::f32,
               Generator* gen = nullptr);
// The same on a given device (on CUDA drawn there, from that device's generator unless one is
// given): the same generator state gives the same numbers as on the CPU.
Tensor rand(const Shape& shape, DType dtype, Device device, Generator* gen = nullptr);
Tensor randn(const Shape& shape, DType dtype, Device device, Generator* gen = nullptr);
Tensor uniform(const Shape& shape, double low, double high, DType dtype, Device device,
               Generator* gen = nullptr);
// A random permutation of 0..n-1 (i64), for shuffling data.
Tensor randperm(int64_t n, Generator* gen = nullptr);

}  // namespace shallow
