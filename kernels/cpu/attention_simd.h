#pragma once
// AVX-512 building blocks of the float attention kernel (attention_f32.cpp): a vectorized exp
// and a register-blocked product of small tiles. Internal to the attention kernels; included
// only where __AVX512F__ is defined.
#include <immintrin.h>

#include <cstdint>
#include <limits>

namespace shallow::cpu::attention_simd {

// e^x in every lane, within about 1 ulp of the correctly rounded value where the result is
// normal. x = n ln2 + r with |r| <= ln2 / 2; e^r by its Taylor polynomial to degree 7 (the
// remainder is below 1e-8 relative); 2^n applied by scalef, which also rounds denormal results
// once and gives 0 far below. -inf gives 0, NaN gives NaN.
inline __m512 exp_ps(__m512 x) {
  // Below -150 every result is 0; clamping keeps -inf from making inf - inf in the reduction.
  // max(c, x) returns x when x is NaN, so NaN goes through.
  x = _mm512_max_ps(_mm512_set1_ps(-150.0f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 split so that n * ln2_hi is exact for |n| < 2^8.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860676533018704e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Lanes [0, n) of a vector, n <= 16.
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u);
}

// C[MR x cols] = alpha * A B (+ C when accumulate), for the MR rows of A at a, where element
// (i, k) of A lies at a[i * a_rs + k * a_ks] (so A may be a transposed view) and row k of B at
// b + k * ldb, contiguous. cols <= 16 * NV; the last vector is masked to what is left.
// The MR x NV accumulators stay in registers over the whole K loop; each k step loads NV
// vectors of B and broadcasts MR values of A.
template <int MR, int NV>
inline void tile_kernel(int64_t K, int64_t cols, float alpha, const float* a, int64_t a_rs,
                        int64_t a_ks, const float* b, int64_t ldb, float* c, int64_t ldc,
                        bool accumulate) {
  const __mmask16 last = first_lanes(cols - 16 * (NV - 1));
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV - 1; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
    bv[NV - 1] = _mm512_maskz_loadu_ps(last, b + 16 * (NV - 1));
    const float* ak = a + k * a_ks;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(ak[i * a_rs]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    b += ldb;
  }
  const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 m = v == NV - 1 ? last : __mmask16(0xFFFF);
      __m512 r = _mm512_mul_ps(va, acc[i][v]);
      if (accumulate) r = _mm512_add_ps(_mm512_maskz_loadu_ps(m, ci + 16 * v), r);
      _mm512_mask_storeu_ps(ci + 16 * v, m, r);
    }
  }
}

// Rows per register block: 6 rows x 4 vectors = 24 accumulators of the 32 registers.
constexpr int kBlockRows = 6;

template <int NV>
inline void tile_rows(int64_t rows, int64_t K, int64_t cols, float alpha, const float* a,
                      int64_t a_rs, int64_t a_ks, const float* b, int64_t ldb, float* c,
                      int64_t ldc, bool accumulate) {
  int64_t i = 0;
  for (; i + kBlockRows <= rows; i += kBlockRows)
    tile_kernel<kBlockRows, NV>(K, cols, alpha, a + i * a_rs, a_rs, a_ks, b, ldb, c + i * ldc,
                                ldc, accumulate);
  const float* ar = a + i * a_rs;
  float* cr = c + i * ldc;
  switch (rows - i) {
    case 0: break;
    case 1: tile_kernel<1, NV>(K, cols, alpha, ar, a_rs, a_ks, b, ldb, cr, ldc, accumulate); break;
    case 2: tile_kernel<2, NV>(K, cols, alpha, ar, a_rs, a_ks, b, ldb, cr, ldc, accumulate); break;
    case 3: tile_kernel<3, NV>(K, cols, alpha, ar, a_rs, a_ks, b, ldb, cr, ldc, accumulate); break;
    case 4: tile_kernel<4, NV>(K, cols, alpha, ar, a_rs, a_ks, b, ldb, cr, ldc, accumulate); break;
    default: tile_kernel<5, NV>(K, cols, alpha, ar, a_rs, a_ks, b, ldb, cr, ldc, accumulate); break;
  }
}

// C[rows x cols] = alpha * A[rows x K] B[K x cols] (+ C when accumulate), A and B placed as in
// tile_kernel. Columns go in blocks of 64 (4 vectors), the last block as narrow as it can be.
// Every element's sum runs over k in order, whatever the block it falls in, so the result
// does not depend on how the caller cuts the work.
inline void tile_gemm(int64_t rows, int64_t cols, int64_t K, float alpha, const float* a,
                      int64_t a_rs, int64_t a_ks, const float* b, int64_t ldb, float* c,
                      int64_t ldc, bool accumulate) {
  for (int64_t j = 0; j < cols; j += 64) {
    const int64_t n = cols - j < 64 ? cols - j : 64;
    const float* bj = b + j;
    float* cj = c + j;
    switch ((n + 15) / 16) {
      case 1: tile_rows<1>(rows, K, n, alpha, a, a_rs, a_ks, bj, ldb, cj, ldc, accumulate); break;
      case 2: tile_rows<2>(rows, K, n, alpha, a, a_rs, a_ks, bj, ldb, cj, ldc, accumulate); break;
      case 3: tile_rows<3>(rows, K, n, alpha, a, a_rs, a_ks, bj, ldb, cj, ldc, accumulate); break;
      default: tile_rows<4>(rows, K, n, alpha, a, a_rs, a_ks, bj, ldb, cj, ldc, accumulate); break;
    }
  }
}

// The largest of n elements (-inf for none).
inline float row_max(const float* s, int64_t n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t c = 0; c < n; c += 16)
    m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), first_lanes(n - c), s + c));
  return _mm512_reduce_max_ps(m);
}

// s = e^(s - shift) over n elements; returns their sum.
inline float exp_shifted(float* s, int64_t n, float shift) {
  const __m512 vs = _mm512_set1_ps(shift);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t c = 0; c < n; c += 16) {
    const __mmask16 m = first_lanes(n - c);
    const __m512 p = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + c), vs));
    _mm512_mask_storeu_ps(s + c, m, p);
    sum = _mm512_mask_add_ps(sum, m, sum, p);
  }
  return _mm512_reduce_add_ps(sum);
}

// x *= f over n elements.
inline void scale_row(float* x, int64_t n, float f) {
  const __m512 vf = _mm512_set1_ps(f);
  for (int64_t c = 0; c < n; c += 16) {
    const __mmask16 m = first_lanes(n - c);
    _mm512_mask_storeu_ps(x + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + c), vf));
  }
}

}  // namespace shallow::cpu::attention_simd
