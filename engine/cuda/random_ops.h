#pragma once
// Random numbers and dropout on CUDA tensors (declared in every build; the stand-ins of
// engine/cuda/without_cuda_random.cpp throw, and are never reached without a CUDA tensor).
// Both draw from Philox at the counters the caller reserved from a Generator.
#include <cstdint>

#include "engine/tensor.h"

namespace shallow::gpu {

// Every element of a contiguous f32/f64 CUDA tensor: low + (high - low) * U[0, 1), element i
// from counter offset + i.
void random_uniform(Tensor& out, double low, double high, uint64_t seed, uint64_t offset,
                    const char* name);
// The same with N(0, 1) (Box-Muller on the counter's four words).
void random_normal(Tensor& out, uint64_t seed, uint64_t offset, const char* name);

// y = dropout of x over `units` blocks of S elements (both contiguous, same shape, f32/f64),
// with the mask of cpu::dropout for the same seed and offset.
void dropout(int64_t units, int64_t S, const Tensor& x, Tensor& y, double p, uint64_t seed,
             uint64_t offset, const char* name);

}  // namespace shallow::gpu
