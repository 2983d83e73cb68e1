// Fuzzes the pickle machine and what is built on it: NumPy objects and the flattening into
// names. Any input must read or throw shallow::Error, nothing else.
#include "fuzz/fuzz_common.h"
#include "weights_import/flatten.h"
#include "weights_import/numpy_pickle.h"
#include "weights_import/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shallow;
  try {
    auto p = pickle::Pickle::parse(data, size, 0, "fuzz-input", numpy_globals());
    resolve_numpy_objects(*p);
    TensorFile f;
    flatten_into(f, *p, p->root(), "root");
    fuzz::touch(f);
  } catch (const Error&) {
  }
  return 0;
}
