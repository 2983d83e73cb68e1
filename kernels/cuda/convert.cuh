#pragma once
// Element conversions on the device between the engine's storage types. bf16 and f16 are the
// CPU's 16-bit storage structs (kernels/cpu/half.h); on the device they convert through float
// with round-to-nearest-even, the rounding the CPU code uses.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "kernels/cpu/half.h"

namespace shallow::cuda {

using cpu::bf16;
using cpu::f16;

template <class T>
constexpr bool is_half_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

// The type a value is widened to before it is converted: float for the 16-bit types.
template <class T>
using widened_t = std::conditional_t<is_half_v<T>, float, T>;

template <class T>
__device__ inline widened_t<T> widen(T v) {
  if constexpr (std::is_same_v<T, bf16>) return __uint_as_float(uint32_t(v.bits) << 16);
  else if constexpr (std::is_same_v<T, f16>) return __half2float(__ushort_as_half(v.bits));
  else return v;
}

template <class Dst, class Src>
__device__ inline Dst convert(Src v_in) {
  const auto v = widen(v_in);
  Dst r;
  if constexpr (std::is_same_v<Dst, bf16>) r.bits = __bfloat16_as_ushort(__float2bfloat16_rn(float(v)));
  else if constexpr (std::is_same_v<Dst, f16>) r.bits = __half_as_ushort(__float2half_rn(float(v)));
  else r = static_cast<Dst>(v);
  return r;
}

}  // namespace shallow::cuda
