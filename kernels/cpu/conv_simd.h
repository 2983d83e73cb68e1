#pragma once
// The few vector operations the convolution kernels use, for float and double: AVX-512 where the
// build targets it, else one element per "vector" (correct everywhere, fast nowhere; the
// convolution then prefers its GEMM paths, see conv.h). Internal to the conv kernels.
//
// Besides the full vector V there is a half-width one, H (256 bits), for a tail of at most
// half a vector: Zen 4 runs a 512-bit FMA as two 256-bit halves, so a 36-wide row costs
// 2.5 full FMAs with a half tail instead of 3 with a masked full one.
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
  // Lanes [0, n) of a vector (none for n <= 0).
  static Mask first(int64_t n) {
    return n >= L ? Mask(0xFFFF) : n <= 0 ? Mask(0) : Mask((1u << n) - 1u);
  }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static float sum(V v) { return _mm512_reduce_add_ps(v); }

  using H = __m256;
  using HMask = __mmask8;
  static constexpr int LH = 8;
  static HMask hfirst(int64_t n) {
    return n >= LH ? HMask(0xFF) : n <= 0 ? HMask(0) : HMask((1u << n) - 1u);
  }
  static H hzero() { return _mm256_setzero_ps(); }
  static H hset1(float x) { return _mm256_set1_ps(x); }
  static H hload(const float* p, HMask m) { return _mm256_maskz_loadu_ps(m, p); }
  static void hstore(float* p, H v, HMask m) { _mm256_mask_storeu_ps(p, m, v); }
  static H hfma(H a, H b, H c) { return _mm256_fmadd_ps(a, b, c); }
  static H half(V v) { return _mm512_castps512_ps256(v); }
};

template <>
struct Simd<double> {
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr int L = 8;
  static Mask first(int64_t n) {
    return n >= L ? Mask(0xFF) : n <= 0 ? Mask(0) : Mask((1u << n) - 1u);
  }
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V load(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, V v, Mask m) { _mm512_mask_storeu_pd(p, m, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  // (Through memory: GCC 12's _mm512_reduce_add_pd warns of an uninitialized variable.)
  static double sum(V v) {
    alignas(64) double t[L];
    _mm512_store_pd(t, v);
    return ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
  }

  using H = __m256d;
  using HMask = __mmask8;
  static constexpr int LH = 4;
  static HMask hfirst(int64_t n) {
    return n >= LH ? HMask(0xF) : n <= 0 ? HMask(0) : HMask((1u << n) - 1u);
  }
  static H hzero() { return _mm256_setzero_pd(); }
  static H hset1(double x) { return _mm256_set1_pd(x); }
  static H hload(const double* p, HMask m) { return _mm256_maskz_loadu_pd(m, p); }
  static void hstore(double* p, H v, HMask m) { _mm256_mask_storeu_pd(p, m, v); }
  static H hfma(H a, H b, H c) { return _mm256_fmadd_pd(a, b, c); }
  static H half(V v) { return _mm512_castpd512_pd256(v); }
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

  // No half vectors: LH = 0 tells the tiles never to use them.
  using H = T;
  using HMask = bool;
  static constexpr int LH = 0;
  static HMask hfirst(int64_t n) { return n >= 1; }
  static H hzero() { return T(0); }
  static H hset1(T x) { return x; }
  static H hload(const T* p, HMask m) { return m ? *p : T(0); }
  static void hstore(T* p, H v, HMask m) {
    if (m) *p = v;
  }
  static H hfma(H a, H b, H c) { return a * b + c; }
  static H half(V v) { return v; }
};
#endif

}  // namespace shallow::cpu::conv_simd
