#pragma once
// Dropout masks drawn from Philox (kernels/cpu/philox.h): the keep/drop decision of unit u
// depends only on (seed, offset + u / 4) and which of the four 32-bit words it takes, never on
// the thread that computes it. Applying the same call to the output's gradient reproduces the
// mask exactly, so the backward needs no saved mask.
#include <cstdint>

namespace shallow::cpu {

// Philox counters one call reserves for `units` mask entries (four entries per counter).
inline uint64_t dropout_counters(int64_t units) { return uint64_t(units + 3) / 4; }

// y[u * S + j] = x[u * S + j] * (keep(u) ? 1 / (1 - p) : 0) for u in [0, units), j in [0, S).
// S = 1 is elementwise dropout; S = spatial size over [N * C] units is channel dropout.
// p = 1 drops everything (y = 0).
template <class T>
void dropout(int64_t units, int64_t S, const T* x, T* y, double p, uint64_t seed, uint64_t offset);

}  // namespace shallow::cpu
