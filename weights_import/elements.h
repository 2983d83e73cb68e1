#pragma once
// Element types as files store them, and their conversion into engine tensors.
//
// The engine has f64 f32 bf16 f16 i64 i32 u8. Files also hold i16, i8, u16, u32, u64 and bool:
// these are widened on reading (i8/i16/u16 -> i32, u32/u64 -> i64, bool -> u8), a u64 value that
// does not fit i64 is an error, and big-endian data is byte-swapped. Data that is already in the
// engine's layout is used in place (zero-copy) when it is suitably aligned.
#include <cstdint>
#include <memory>
#include <string>

#include "engine/tensor.h"
#include "weights_import/file_bytes.h"

namespace shallow {

enum class ElementType { f64, f32, f16, bf16, i64, i32, i16, i8, u8, u16, u32, u64, boolean };

struct StoredType {
  ElementType type = ElementType::f32;
  bool big_endian = false;
};

size_t element_size(ElementType t);
const char* element_name(ElementType t);  // "f64", "i16", "bool", ...
// The engine dtype an element type is read as.
DType engine_dtype(ElementType t);
// True when the stored bytes are already the engine's representation of engine_dtype(t).
bool stored_as_is(StoredType t);

// A CPU storage holding `count` elements of engine_dtype(t), from the stored bytes at `src`
// (which must hold count * element_size bytes). It aliases `src`, keeping `owner` alive, when
// the bytes can be used as they are, and is a converted copy otherwise (always a copy when
// `owner` is null). `what` names the data in error messages.
std::shared_ptr<Storage> storage_from_bytes(const uint8_t* src, size_t count, StoredType t,
                                            const std::shared_ptr<void>& owner, const std::string& what);

// The number of bytes that `count` elements of size `element_bytes` take; throws (naming
// `what`) if that overflows or exceeds `available`, so that no reader allocates for data the
// file does not hold.
size_t checked_byte_count(int64_t count, size_t element_bytes, size_t available, const std::string& what);

// Checks that a view of `shape` and `strides` (in elements, non-negative) starting at `offset`
// stays inside `storage_elements`, without overflow; throws naming `what`.
void check_view_bounds(const Shape& shape, const Shape& strides, int64_t offset, int64_t storage_elements,
                       const std::string& what);

}  // namespace shallow
