#pragma once
// The float attention kernels built on AVX-512 tile products and a vectorized exp
// (attention_f32.cpp). attention.cpp calls them for float where they are built and keeps its
// generic kernels for double and for builds without AVX-512.
#include <cstdint>

#include "kernels/cpu/attention.h"

namespace shallow::cpu::attention_detail {

// Query rows and keys per tile of the float kernels (tests aim at their edges).
constexpr int64_t kQueryTileF32 = 72;
constexpr int64_t kKeyTileF32 = 256;

// Whether this build has the AVX-512 float kernels (the target was compiled with AVX-512F).
bool have_f32_kernels();

void forward_f32(const AttentionArgs<float>& a, float* out, float* lse);
void backward_f32(const AttentionArgs<float>& a, const float* out, const float* lse,
                  const float* grad_out, float* gq, float* gk, float* gv);

// y = e^x by the kernels' vectorized exp (std::exp where they are not built), for tests.
void exp_f32(const float* x, float* y, int64_t n);

}  // namespace shallow::cpu::attention_detail
