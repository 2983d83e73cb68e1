#pragma once
// Deterministic numbers shared with tests/reference/eeg_models.py, so that the EEG fixtures
// store outputs only: weights, buffers and inputs are drawn on both sides from splitmix64 of
// (seed + (i + 1) * golden), keeping the top 24 bits, which makes each draw an exact float.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace shallow::testing::eeg {

inline uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

// n numbers in [-1, 1).
inline std::vector<double> uniform_pm1(uint64_t seed, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = seed + uint64_t(i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = double(z >> 40) / double(1 << 24);
    out[size_t(i)] = 2.0 * u - 1.0;
  }
  return out;
}

// shift + scale * U(-1, 1), computed in double and rounded once to f32 (as the script does).
inline Tensor deterministic_tensor(uint64_t seed, const Shape& shape, double scale = 1.0,
                                   double shift = 0.0) {
  std::vector<double> u = uniform_pm1(seed, shape_numel(shape));
  std::vector<float> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) v[i] = float(shift + scale * u[i]);
  return Tensor::from_vector(v, shape);
}

// The script's fill_deterministic: every parameter and floating buffer set from its name.
inline void fill_deterministic(nn::Module& module, uint64_t base_seed) {
  NoGrad no_grad;
  nn::NamedTensors all = module.named_parameters();
  for (auto& b : module.named_buffers()) all.push_back(b);
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (auto& [name, t] : all) {
    if (!is_floating(t.dtype()) || t.dim() == 0) continue;
    const uint64_t seed = base_seed ^ fnv1a64(name);
    Tensor value;
    if (ends_with(name, "running_var")) value = deterministic_tensor(seed, t.shape(), 0.5, 1.0);
    else if (ends_with(name, "running_mean")) value = deterministic_tensor(seed, t.shape(), 0.2);
    else if (t.dim() >= 2)
      value = deterministic_tensor(seed, t.shape(), 1.0 / std::sqrt(double(t.numel() / t.size(0))));
    else if (ends_with(name, "weight")) value = deterministic_tensor(seed, t.shape(), 0.1, 1.0);
    else value = deterministic_tensor(seed, t.shape(), 0.1);
    t.copy_(value);
  }
}

// Dropout layers to eval, everything else as it is (batch norm keeps batch statistics).
inline void dropout_off(nn::Module& module) {
  for (auto& [_, m] : module.named_modules())
    if (m->type_name() == "Dropout") m->eval();
}

}  // namespace shallow::testing::eeg
