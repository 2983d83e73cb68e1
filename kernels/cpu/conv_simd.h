#pragma once
// The few vector operations the convolution kernels use, for float and double: AVX-512 where the
// build targets it, else one element per "vector" (correct everywhere, fast nowhere; the
// convolution then prefers its GEMM paths, see conv_paths.h). Internal to the conv kernels.
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace shallow::cpu::conv_simd {

#if defined(__AVX512F__)
inline constexpr bool kVectorized = true;

template <class T>
struct Simd;

template <>
struct Simd<float> {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int L = 16;
  // Lanes [0, n) of a vector.
  static Mask first(int64_t n) { return n >= L ? Mask(0xFFFF) : Mask((1u << n) - 1u); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static float sum(V v) { return _mm512_reduce_add_ps(v); }
};

template <>
struct Simd<double> {
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr int L = 8;
  static Mask first(int64_t n) { return n >= L ? Mask(0xFF) : Mask((1u << n) - 1u); }
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V load(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, V v, Mask m) { _mm512_mask_storeu_pd(p, m, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static double sum(V v) { return _mm512_reduce_add_pd(v); }
};

#else
inline constexpr bool kVectorized = false;

template <class T>
struct Simd {
  using V = T;
  using Mask = bool;
  static constexpr int L = 1;
  static Mask first(int64_t n) { return n >= 1; }
  static V zero() { return T(0); }
  static V set1(T x) { return x; }
  static V load(const T* p) { return *p; }
  static V load(const T* p, Mask m) { return m ? *p : T(0); }
  static void store(T* p, V v, Mask m) {
    if (m) *p = v;
  }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V add(V a, V b) { return a + b; }
  static T sum(V v) { return v; }
};
#endif

}  // namespace shallow::cpu::conv_simd
