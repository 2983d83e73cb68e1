#pragma once
// Wall-clock timing of GPU work for the bench_cuda_* programs: the device synchronized around
// back-to-back calls, after warm-up. tests/gpu/torch_timing.py times PyTorch's side the same way.
#include <chrono>

#include "engine/cuda/api.h"

namespace shallow::bench {

// Seconds per call of `once`: three warm-up calls, then enough calls to take about a quarter
// of a second (at most max_calls).
template <class F>
double cuda_seconds_per_call(F&& once, int max_calls = 1 << 14) {
  for (int i = 0; i < 3; ++i) once();
  cuda_synchronize();
  int calls = 1;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) once();
    cuda_synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0.25 || calls >= max_calls) return s / calls;
    calls *= s < 0.01 ? 16 : 2;
  }
}

}  // namespace shallow::bench
