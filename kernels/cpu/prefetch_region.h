#pragma once
// Memory a micro-kernel asks the cache for while it computes: `runs` runs of `lines` cache
// lines, `stride` bytes apart (the source of the panel of B packed next, so that packing it
// does not wait on memory). A kernel issues one line per k step. Shared by the drivers and the
// files built with AVX-512 flags; those must not call prefetch_share (the linker could keep
// their AVX-512 copy of it for everyone).
#include <cstdint>

namespace shallow::cpu {

struct PrefetchRegion {
  const char* first = nullptr;
  int64_t runs = 0, lines = 0, stride = 0;
};

// The i-th of n near-equal shares of a region's runs: one per micro-kernel call that fetches it.
inline PrefetchRegion prefetch_share(const PrefetchRegion& r, int64_t i, int64_t n) {
  const int64_t r0 = r.runs * i / n, r1 = r.runs * (i + 1) / n;
  return {r.first + r0 * r.stride, r1 - r0, r.lines, r.stride};
}

}  // namespace shallow::cpu
