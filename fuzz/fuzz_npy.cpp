// Fuzzes the npy reader: any input must read or throw shallow::Error, nothing else.
#include "fuzz/fuzz_common.h"
#include "weights_import/numpy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shallow;
  using namespace shallow::fuzz;
  try {
    touch(parse_npy(input(data, size), "array"));
  } catch (const Error&) {
  }
  return 0;
}
