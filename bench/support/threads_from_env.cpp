// Linked into every benchmark binary: SHALLOW_THREADS=n sets the engine's thread count before
// main runs, so that a side-by-side run can match the thread count of the library it is
// compared with, whatever flags the binary itself parses.
#include <cstdlib>

#include "kernels/cpu/parallel.h"

namespace {

const bool kThreadsFromEnv = [] {
  const char* text = std::getenv("SHALLOW_THREADS");
  if (text != nullptr && std::atoi(text) > 0) shallow::cpu::set_num_threads(std::atoi(text));
  return true;
}();

}  // namespace
