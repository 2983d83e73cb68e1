// Fuzzes the npz reader: any input must read or throw shallow::Error, nothing else.
#include "fuzz/fuzz_common.h"
#include "weights_import/numpy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shallow;
  using namespace shallow::fuzz;
  try {
    touch(parse_npz(input(data, size)));
  } catch (const Error&) {
  }
  return 0;
}
