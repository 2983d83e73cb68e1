#pragma once
// What the bench_cuda_* programs share besides timing (cuda_timing.h): their command line,
// [--json FILE] [--quick] (and, where a profiler is pointed at it, [--shape NAME] [--once]), and
// the comparison of two results of the same work.
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/ops.h"

namespace shallow::bench {

struct CudaBenchArgs {
  std::string json_path;  // empty: no JSON file
  bool quick = false;     // fewer shapes, for a smoke run
  std::string shape;      // not empty: only the shape of this name
  bool once = false;      // each variant run once, untimed: a profiler's run
};

// Parses argv into `args`; prints the usage of `program` and returns false on anything else.
// --shape and --once are taken only by programs that offer them (`profiling_options`).
inline bool parse_cuda_bench_args(int argc, char** argv, const char* program, CudaBenchArgs& args,
                                  bool profiling_options = false) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      args.json_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--quick")) {
      args.quick = true;
    } else if (profiling_options && !std::strcmp(argv[i], "--shape") && i + 1 < argc) {
      args.shape = argv[++i];
    } else if (profiling_options && !std::strcmp(argv[i], "--once")) {
      args.once = true;
    } else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--quick]%s\n", program,
                   profiling_options ? " [--shape NAME] [--once]" : "");
      return false;
    }
  }
  return true;
}

// Largest |x - y| / (|y| + 1) over the elements, computed where the tensors are.
inline double max_rel_diff(const Tensor& x, const Tensor& y) {
  NoGrad no_grad;
  return max(div(abs(sub(x, y)), add(abs(y), 1.0))).item();
}

}  // namespace shallow::bench
