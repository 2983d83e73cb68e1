#include "weights_import/elements.h"

#include <cstring>
#include <limits>
#include <type_traits>

namespace shallow {

size_t element_size(ElementType t) {
  switch (t) {
    case ElementType::f64: case ElementType::i64: case ElementType::u64: return 8;
    case ElementType::f32: case ElementType::i32: case ElementType::u32: return 4;
    case ElementType::f16: case ElementType::bf16: case ElementType::i16: case ElementType::u16: return 2;
    case ElementType::i8: case ElementType::u8: case ElementType::boolean: return 1;
  }
  return 0;
}

const char* element_name(ElementType t) {
  switch (t) {
    case ElementType::f64: return "f64";
    case ElementType::f32: return "f32";
    case ElementType::f16: return "f16";
    case ElementType::bf16: return "bf16";
    case ElementType::i64: return "i64";
    case ElementType::i32: return "i32";
    case ElementType::i16: return "i16";
    case ElementType::i8: return "i8";
    case ElementType::u8: return "u8";
    case ElementType::u16: return "u16";
    case ElementType::u32: return "u32";
    case ElementType::u64: return "u64";
    case ElementType::boolean: return "bool";
  }
  return "?";
}

DType engine_dtype(ElementType t) {
  switch (t) {
    case ElementType::f64: return DType::f64;
    case ElementType::f32: return DType::f32;
    case ElementType::f16: return DType::f16;
    case ElementType::bf16: return DType::bf16;
    case ElementType::i64: case ElementType::u32: case ElementType::u64: return DType::i64;
    case ElementType::i32: case ElementType::i16: case ElementType::i8: case ElementType::u16: return DType::i32;
    case ElementType::u8: case ElementType::boolean: return DType::u8;
  }
  return DType::f32;
}

bool stored_as_is(StoredType t) {
  if (t.big_endian && element_size(t.type) > 1) return false;
  return element_size(t.type) == dtype_size(engine_dtype(t.type));
}

namespace {

// Reads one stored element of type S (little- or big-endian) from unaligned memory.
template <class S>
S load(const uint8_t* p, bool big_endian) {
  uint8_t b[sizeof(S)];
  if (big_endian) {
    for (size_t i = 0; i < sizeof(S); ++i) b[i] = p[sizeof(S) - 1 - i];
  } else {
    std::memcpy(b, p, sizeof(S));
  }
  S v;
  std::memcpy(&v, b, sizeof(S));
  return v;
}

// Converts count stored elements of type S into engine elements of type D. kFromU64 checks that
// unsigned 64-bit values fit the engine's i64.
template <class S, class D, bool kFromU64 = false>
void convert(const uint8_t* src, size_t count, bool big_endian, void* dst_raw, const std::string& what) {
  D* dst = static_cast<D*>(dst_raw);
  for (size_t i = 0; i < count; ++i) {
    const S v = load<S>(src + i * sizeof(S), big_endian);
    if constexpr (kFromU64) {
      SH_CHECK(v <= uint64_t(std::numeric_limits<int64_t>::max()), what, ": element ", i, " (", v,
               ") of a u64 array does not fit the engine's i64");
    }
    dst[i] = D(v);
  }
}

}  // namespace

std::shared_ptr<Storage> storage_from_bytes(const uint8_t* src, size_t count, StoredType t,
                                            const std::shared_ptr<void>& owner, const std::string& what) {
  const DType dt = engine_dtype(t.type);
  const size_t out_bytes = count * dtype_size(dt);
  const bool aligned = reinterpret_cast<uintptr_t>(src) % dtype_size(dt) == 0;
  if (stored_as_is(t) && aligned && owner)
    return std::make_shared<Storage>(const_cast<uint8_t*>(src), out_bytes, Device::cpu(), owner);

  auto storage = std::make_shared<Storage>(out_bytes, Device::cpu());
  void* dst = storage->data();
  const bool be = t.big_endian;
  switch (t.type) {
    // Same width as the engine type: a byte copy (or swap) only.
    case ElementType::f64: convert<uint64_t, uint64_t>(src, count, be, dst, what); break;
    case ElementType::i64: convert<uint64_t, uint64_t>(src, count, be, dst, what); break;
    case ElementType::f32: convert<uint32_t, uint32_t>(src, count, be, dst, what); break;
    case ElementType::i32: convert<uint32_t, uint32_t>(src, count, be, dst, what); break;
    case ElementType::f16: convert<uint16_t, uint16_t>(src, count, be, dst, what); break;
    case ElementType::bf16: convert<uint16_t, uint16_t>(src, count, be, dst, what); break;
    case ElementType::u8: convert<uint8_t, uint8_t>(src, count, be, dst, what); break;
    case ElementType::boolean: convert<uint8_t, uint8_t>(src, count, be, dst, what); break;
    // Widened.
    case ElementType::i16: convert<int16_t, int32_t>(src, count, be, dst, what); break;
    case ElementType::i8: convert<int8_t, int32_t>(src, count, be, dst, what); break;
    case ElementType::u16: convert<uint16_t, int32_t>(src, count, be, dst, what); break;
    case ElementType::u32: convert<uint32_t, int64_t>(src, count, be, dst, what); break;
    case ElementType::u64: convert<uint64_t, int64_t, true>(src, count, be, dst, what); break;
  }
  return storage;
}

size_t checked_byte_count(int64_t count, size_t element_bytes, size_t available, const std::string& what) {
  SH_CHECK(count >= 0, what, ": negative element count ", count);
  uint64_t bytes = 0;
  SH_CHECK(!__builtin_mul_overflow(uint64_t(count), uint64_t(element_bytes), &bytes), what, ": ", count,
           " elements of ", element_bytes, " bytes overflow 64 bits");
  SH_CHECK(bytes <= available, what, ": needs ", bytes, " bytes but the file holds only ", available);
  return size_t(bytes);
}

void check_view_bounds(const Shape& shape, const Shape& strides, int64_t offset, int64_t storage_elements,
                       const std::string& what) {
  SH_CHECK(shape.size() == strides.size(), what, ": shape ", shape_str(shape), " has ", shape.size(),
           " dims but ", strides.size(), " strides are given");
  SH_CHECK(offset >= 0, what, ": negative storage offset ", offset);
  int64_t last = offset;
  bool empty = false;
  for (size_t d = 0; d < shape.size(); ++d) {
    SH_CHECK(shape[d] >= 0, what, ": negative size in shape ", shape_str(shape));
    SH_CHECK(strides[d] >= 0, what, ": negative stride in ", shape_str(strides));
    if (shape[d] == 0) empty = true;
  }
  try {
    shape_numel(shape);  // zero strides can make a view of more elements than fit 64 bits
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  if (empty) {
    SH_CHECK(offset <= storage_elements, what, ": storage offset ", offset, " is past the storage's ",
             storage_elements, " elements");
    return;
  }
  for (size_t d = 0; d < shape.size(); ++d) {
    int64_t step = 0;
    SH_CHECK(!__builtin_mul_overflow(shape[d] - 1, strides[d], &step) && !__builtin_add_overflow(last, step, &last),
             what, ": shape ", shape_str(shape), " with strides ", shape_str(strides), " overflows 64 bits");
  }
  SH_CHECK(last < storage_elements, what, ": shape ", shape_str(shape), " with strides ", shape_str(strides),
           " at offset ", offset, " reaches element ", last, " of a storage of ", storage_elements, " elements");
}

}  // namespace shallow
