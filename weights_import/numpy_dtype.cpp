#include "weights_import/numpy_dtype.h"

#include <cctype>

#include "engine/error.h"

namespace shallow {

StoredType NumpyDType::stored() const {
  StoredType t;
  t.big_endian = big_endian;
  const auto bad = [&] { return Error("numpy dtype '" + spelling + "' is not a number type the engine reads"); };
  switch (kind) {
    case 'f':
      if (itemsize == 2) t.type = ElementType::f16;
      else if (itemsize == 4) t.type = ElementType::f32;
      else if (itemsize == 8) t.type = ElementType::f64;
      else throw bad();
      break;
    case 'i':
      if (itemsize == 1) t.type = ElementType::i8;
      else if (itemsize == 2) t.type = ElementType::i16;
      else if (itemsize == 4) t.type = ElementType::i32;
      else if (itemsize == 8) t.type = ElementType::i64;
      else throw bad();
      break;
    case 'u':
      if (itemsize == 1) t.type = ElementType::u8;
      else if (itemsize == 2) t.type = ElementType::u16;
      else if (itemsize == 4) t.type = ElementType::u32;
      else if (itemsize == 8) t.type = ElementType::u64;
      else throw bad();
      break;
    case 'b':
      if (itemsize != 1) throw bad();
      t.type = ElementType::boolean;
      break;
    default: throw bad();
  }
  return t;
}

NumpyDType parse_numpy_dtype(const std::string& descr, const std::string& where, char byte_order) {
  NumpyDType d;
  d.spelling = descr;
  size_t i = 0;
  char order = byte_order;
  if (!descr.empty() && (descr[0] == '<' || descr[0] == '>' || descr[0] == '|' || descr[0] == '=')) order = descr[i++];
  SH_CHECK(i < descr.size(), where, ": empty numpy dtype '", descr, "'");
  d.kind = descr[i++];
  if (d.kind == '?') d.kind = 'b';
  std::string digits = descr.substr(i);
  SH_CHECK(digits.size() <= 9, where, ": numpy dtype '", descr, "' has an absurd size");
  for (char c : digits)
    SH_CHECK(std::isdigit(uint8_t(c)), where, ": numpy dtype '", descr,
             "' is not supported (complex, datetime and structured dtypes cannot become tensors)");
  size_t n = digits.empty() ? 0 : size_t(std::stoul(digits));
  switch (d.kind) {
    case 'f': case 'i': case 'u': case 'b': d.itemsize = n; break;
    case 'O': d.itemsize = 8; break;
    case 'U': d.itemsize = n * 4; break;  // UCS-4 code points
    case 'S': case 'a': d.kind = 'S'; d.itemsize = n; break;
    default:
      throw Error(where + ": numpy dtype '" + descr +
                  "' is not supported (complex, datetime and structured dtypes cannot become tensors)");
  }
  if (d.is_numeric()) {  // rejects f12, f16 (quad), i3, b2, ...
    try {
      d.stored();
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }
  d.big_endian = order == '>' && d.itemsize > 1;
  return d;
}

std::string numpy_descr(DType dtype) {
  switch (dtype) {
    case DType::f64: return "<f8";
    case DType::f32: return "<f4";
    case DType::f16: return "<f2";
    case DType::i64: return "<i8";
    case DType::i32: return "<i4";
    case DType::u8: return "|u1";
    case DType::bf16: break;
  }
  throw Error("NumPy has no bfloat16: convert the tensor to f32 before writing it as .npy");
}

}  // namespace shallow
