#pragma once
// NumPy's dtype strings ("<f4", "|b1", ">i8", "<U5", "|O") as .npy headers and pickles hold them.
#include <cstddef>
#include <string>

#include "engine/dtype.h"
#include "weights_import/elements.h"

namespace shallow {

struct NumpyDType {
  char kind = 'f';        // f i u b: numbers; O: Python objects; U: unicode text; S: byte strings
  size_t itemsize = 4;    // bytes per element
  bool big_endian = false;
  std::string spelling;   // as the file wrote it, for messages

  bool is_numeric() const { return kind == 'f' || kind == 'i' || kind == 'u' || kind == 'b'; }
  StoredType stored() const;  // the element type of a numeric dtype
};

// Parses a dtype string; `byte_order` ('<', '>', '|', '=') overrides a missing prefix. Throws
// (naming `where`) for what the engine cannot hold: complex, datetime, structured, f128, ...
NumpyDType parse_numpy_dtype(const std::string& descr, const std::string& where, char byte_order = 0);

// The .npy spelling of an engine dtype ("<f4", "|u1"); throws for bf16, which NumPy lacks.
std::string numpy_descr(DType dtype);

}  // namespace shallow
