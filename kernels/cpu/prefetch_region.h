#pragma once
// Memory a micro-kernel asks the cache for while it computes: `runs` runs of `lines` cache
// lines, `stride` bytes apart (the source of the panel of B packed next, so that packing it
// does not wait on memory). A kernel issues one line per k step through a PrefetchCursor.
// Shared by the drivers and the files built with AVX-512 flags; those must not call
// strided_runs or prefetch_share (the linker could keep their AVX-512 copy for everyone), and
// the cursor's members are always inlined, so that no copy of them is shared at all.
#include <cstdint>

namespace shallow::cpu {

struct PrefetchRegion {
  const char* first = nullptr;
  int64_t runs = 0, lines = 0, stride = 0;
};

// Walks a region one cache line per next(), run after run (nothing once it is done).
class PrefetchCursor {
 public:
  [[gnu::always_inline]] explicit PrefetchCursor(const PrefetchRegion& r)
      : run_(r.first), line_(r.first), runs_left_(r.runs), lines_left_(r.lines), lines_(r.lines),
        stride_(r.stride) {}

  [[gnu::always_inline]] void next() {
    if (runs_left_ <= 0) return;
    __builtin_prefetch(line_, 0, 2);  // prefetcht1: into L2, where the packing will read it
    line_ += 64;
    if (--lines_left_ == 0) {
      run_ += stride_;
      line_ = run_;
      lines_left_ = lines_;
      --runs_left_;
    }
  }

 private:
  const char* run_;
  const char* line_;
  int64_t runs_left_, lines_left_, lines_, stride_;
};

// `runs` runs of `run_bytes` bytes, `stride_bytes` apart from `first` (for the drivers). A run
// that starts inside a line touches one line more than its length fills.
inline PrefetchRegion strided_runs(const void* first, int64_t runs, int64_t run_bytes,
                                   int64_t stride_bytes) {
  return {static_cast<const char*>(first), runs, (run_bytes + 63) / 64 + 1, stride_bytes};
}

// The i-th of n near-equal shares of a region's runs: one per micro-kernel call that fetches it.
inline PrefetchRegion prefetch_share(const PrefetchRegion& r, int64_t i, int64_t n) {
  const int64_t r0 = r.runs * i / n, r1 = r.runs * (i + 1) / n;
  return {r.first + r0 * r.stride, r1 - r0, r.lines, r.stride};
}

}  // namespace shallow::cpu
