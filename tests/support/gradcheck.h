#pragma once
// Finite-difference gradient check in f64: compares backward() with central differences of
// a random projection of the output, for every element of every input that requires grad.
#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "engine/ops.h"

namespace shallow::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
};

::testing::AssertionResult gradcheck(const Fn& fn, std::vector<Tensor> inputs,
                                     GradcheckOptions opt = {});

// A random f64 tensor of the given shape that requires grad (deterministic per seed).
Tensor rand_input(const Shape& shape, uint64_t seed, double low = -1.0, double high = 1.0);

}  // namespace shallow::testing
