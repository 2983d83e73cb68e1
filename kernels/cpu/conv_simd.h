#pragma once
// The few vector operations the convolution kernels use, for float and double: AVX-512 where the
// build targets it, else one element per "vector" (correct everywhere, fast nowhere; the
// convolution then prefers its GEMM paths, see conv.h). Internal to the conv kernels.
//
// Besides the full vector V there is a half-width one, H (256 bits), for a tail of at most
// half a vector: Zen 4 runs a 512-bit FMA as two 256-bit halves, so a 36-wide row costs
// 2.5 full FMAs with a half tail instead of 3 with a masked full one.
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

// GCC 12 takes the undefined pass-through operand inside the half-vector extracts for an
// uninitialized variable (-Wmaybe-uninitialized, a false report).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

// dst[j * ld_dst + i] = src[i * ld_src + j] for an 8 x 8 block of floats, in registers.
inline void transpose8x8(const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld_src);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

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

// dst [cols, rows] = src [rows, cols]^T, with leading dimensions; 8 x 8 blocks in registers
// where AVX-512 is there (the machine has AVX2 then too), the edges one by one.
template <class T>
void transpose(const T* src, int64_t ld_src, int64_t rows, int64_t cols, T* dst, int64_t ld_dst) {
  int64_t i0 = 0, j0 = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for (i0 = 0; i0 + 8 <= rows; i0 += 8)
      for (j0 = 0; j0 + 8 <= cols; j0 += 8)
        transpose8x8(src + i0 * ld_src + j0, ld_src, dst + j0 * ld_dst + i0, ld_dst);
    // Left: columns [j0, cols) of the first i0 rows, and every column of rows [i0, rows).
    for (int64_t i = 0; i < i0; ++i)
      for (int64_t j = j0; j < cols; ++j) dst[j * ld_dst + i] = src[i * ld_src + j];
  }
#endif
  for (int64_t i = i0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * ld_dst + i] = src[i * ld_src + j];
}

}  // namespace shallow::cpu::conv_simd

#pragma GCC diagnostic pop
