#pragma once
#include <cstdint>
#include <string>

#include "kernels/cpu/half.h"

namespace shallow {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8 };

using cpu::bf16;
using cpu::f16;

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "f32", "bf16", ...
DType dtype_from_name(const std::string& name);  // throws on unknown
inline bool is_floating(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16; }
inline bool is_half(DType t) { return t == DType::bf16 || t == DType::f16; }

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };

}  // namespace shallow

// Runs the body with `scalar_t` bound to the C++ type of DTYPE.
#define SH_DISPATCH_ALL(DTYPE, ...)                                          \
  [&] {                                                                     \
    switch (DTYPE) {                                                        \
      case ::shallow::DType::f32: { using scalar_t = float; return __VA_ARGS__(); }    \
      case ::shallow::DType::f64: { using scalar_t = double; return __VA_ARGS__(); }   \
      case ::shallow::DType::bf16: { using scalar_t = ::shallow::bf16; return __VA_ARGS__(); } \
      case ::shallow::DType::f16: { using scalar_t = ::shallow::f16; return __VA_ARGS__(); }   \
      case ::shallow::DType::i32: { using scalar_t = int32_t; return __VA_ARGS__(); }  \
      case ::shallow::DType::i64: { using scalar_t = int64_t; return __VA_ARGS__(); }  \
      case ::shallow::DType::u8: { using scalar_t = uint8_t; return __VA_ARGS__(); }   \
    }                                                                       \
    throw ::shallow::Error("unknown dtype");                               \
  }()

// The floating dtypes, 16-bit ones included: for kernels that take bf16/f16 storage directly
// (the CUDA elementwise and norm kernels' forward).
#define SH_DISPATCH_FLOAT_AND_HALF(DTYPE, OPNAME, ...)                                   \
  [&] {                                                                                 \
    switch (DTYPE) {                                                                    \
      case ::shallow::DType::f32: { using scalar_t = float; return __VA_ARGS__(); }      \
      case ::shallow::DType::f64: { using scalar_t = double; return __VA_ARGS__(); }     \
      case ::shallow::DType::bf16: { using scalar_t = ::shallow::bf16; return __VA_ARGS__(); } \
      case ::shallow::DType::f16: { using scalar_t = ::shallow::f16; return __VA_ARGS__(); }   \
      default: break;                                                                   \
    }                                                                                   \
    throw ::shallow::Error(::shallow::str_cat(OPNAME, ": expected a floating dtype, got ", \
                                              ::shallow::dtype_name(DTYPE)));            \
  }()

// Compute dtypes of the CPU kernels: f32 and f64 (half types are computed in f32 by the ops).
#define SH_DISPATCH_FLOAT(DTYPE, OPNAME, ...)                                \
  [&] {                                                                     \
    switch (DTYPE) {                                                        \
      case ::shallow::DType::f32: { using scalar_t = float; return __VA_ARGS__(); }  \
      case ::shallow::DType::f64: { using scalar_t = double; return __VA_ARGS__(); } \
      default: break;                                                       \
    }                                                                       \
    throw ::shallow::Error(::shallow::str_cat(OPNAME, ": expected f32 or f64, got ", \
                                              ::shallow::dtype_name(DTYPE)));        \
  }()
