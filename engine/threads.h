#pragma once
// The engine's thread count (the CPU kernels' pool lives in kernels/cpu/parallel.h).
#include "kernels/cpu/parallel.h"

namespace shallow {
inline int num_threads() { return cpu::num_threads(); }
inline void set_num_threads(int n) { cpu::set_num_threads(n); }
}  // namespace shallow
