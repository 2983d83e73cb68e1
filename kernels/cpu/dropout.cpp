#include "kernels/cpu/dropout.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/philox.h"

#if defined(__AVX512F__) && defined(__BMI2__)
#include <immintrin.h>
#define SH_DROPOUT_AVX512 1
#endif

namespace shallow::cpu {
namespace {

// A unit is dropped when its uniform draw u = k / 2^24 (k the draw's top 24 bits) falls below
// float(p). Scaling by 2^24 is exact in float, so u < float(p) exactly when k < keep_from:
// an integer test that vector code can make on the raw bits. p >= 1 drops every unit.
uint32_t keep_from_of(double p) {
  if (p >= 1.0) return 0xFFFFFFFFu;
  return uint32_t(std::ceil(double(float(p)) * 16777216.0));
}

#ifdef SH_DROPOUT_AVX512
// GCC 12 takes the undefined pass-through operand inside these intrinsics for an uninitialized
// variable.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// philox16 in AVX-512 registers: the 16 counters counter0 + l, one per 32-bit lane, through
// the 10 rounds; returns, for word w of the four, the 16 lanes' "keep" bits (k >= keep_from).
// The 32 x 32 -> 64-bit products are vpmuludq on the even and the odd lanes apart.
struct Hilo {
  __m512i hi, lo;
};

inline Hilo mul_wide(__m512i a, __m512i m) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  return {_mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd),
          _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32))};
}

inline void philox16_keep(uint64_t seed, uint64_t counter0, uint32_t keep_from, __mmask16 keep[4]) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i lo0 = _mm512_set1_epi32(int(uint32_t(counter0)));
  const __m512i hi0 = _mm512_set1_epi32(int(uint32_t(counter0 >> 32)));
  __m512i c0 = _mm512_add_epi32(lo0, iota);
  const __mmask16 carry = _mm512_cmplt_epu32_mask(c0, lo0);  // the low word wrapped
  __m512i c1 = _mm512_mask_add_epi32(hi0, carry, hi0, _mm512_set1_epi32(1));
  __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
  const __m512i m0 = _mm512_set1_epi32(int(0xD2511F53u)), m1 = _mm512_set1_epi32(int(0xCD9E8D57u));
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const Hilo p0 = mul_wide(c0, m0), p1 = mul_wide(c2, m1);
    const __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(p1.hi, c1), _mm512_set1_epi32(int(k0)));
    const __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(p0.hi, c3), _mm512_set1_epi32(int(k1)));
    c1 = p1.lo;
    c3 = p0.lo;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  const __m512i from = _mm512_set1_epi32(int(keep_from));
  const __m512i words[4] = {c0, c1, c2, c3};
  for (int w = 0; w < 4; ++w)
    keep[w] = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(words[w], 8), from);
}

// Unit 4 l + w of the batch takes bit l of keep[w]: the four masks interleaved into one.
inline uint64_t interleave_keep(const __mmask16 keep[4]) {
  return _pdep_u64(keep[0], 0x1111111111111111ull) | _pdep_u64(keep[1], 0x2222222222222222ull) |
         _pdep_u64(keep[2], 0x4444444444444444ull) | _pdep_u64(keep[3], 0x8888888888888888ull);
}

inline void scale_batch(const float* x, float* y, uint64_t keep, float scale) {
  const __m512 s = _mm512_set1_ps(scale);
  for (int q = 0; q < 4; ++q)
    _mm512_storeu_ps(y + 16 * q, _mm512_mul_ps(_mm512_loadu_ps(x + 16 * q),
                                               _mm512_maskz_mov_ps(__mmask16(keep >> (16 * q)), s)));
}

inline void scale_batch(const double* x, double* y, uint64_t keep, double scale) {
  const __m512d s = _mm512_set1_pd(scale);
  for (int q = 0; q < 8; ++q)
    _mm512_storeu_pd(y + 8 * q, _mm512_mul_pd(_mm512_loadu_pd(x + 8 * q),
                                              _mm512_maskz_mov_pd(__mmask8(keep >> (8 * q)), s)));
}
#pragma GCC diagnostic pop
#endif

}  // namespace

// A dropped element is x * 0, as the scalar path and PyTorch make it (a NaN stays NaN).
template <class T>
void dropout(int64_t units, int64_t S, const T* x, T* y, double p, uint64_t seed, uint64_t offset) {
  const T scale = p >= 1.0 ? T(0) : T(1.0 / (1.0 - p));
  const uint32_t keep_from = keep_from_of(p);
  // Work in groups of four units: one Philox call gives all four decisions.
  const int64_t groups = (units + 3) / 4;
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(4 * S, 1));
  auto apply = [&](int64_t u, uint32_t bits) {
    const T factor = (bits >> 8) >= keep_from ? scale : T(0);
    const T* xp = x + u * S;
    T* yp = y + u * S;
    for (int64_t j = 0; j < S; ++j) yp[j] = xp[j] * factor;
  };
  parallel_for(0, groups, grain, [&](int64_t gb, int64_t ge) {
    int64_t grp = gb;
    // 16 groups (64 units) per Philox batch, the rest one group at a time: the same draws.
    for (; grp + 16 <= ge; grp += 16) {
#ifdef SH_DROPOUT_AVX512
      if (S == 1 && 4 * (grp + 16) <= units) {  // elementwise dropout, a whole batch of 64
        __mmask16 keep[4];
        philox16_keep(seed, offset + uint64_t(grp), keep_from, keep);
        scale_batch(x + 4 * grp, y + 4 * grp, interleave_keep(keep), scale);
        continue;
      }
#endif
      uint32_t r[4][16];
      philox16(seed, offset + uint64_t(grp), r);
      for (int l = 0; l < 16; ++l) {
        const int64_t u0 = 4 * (grp + l), u_end = std::min(units, u0 + 4);
        for (int64_t u = u0; u < u_end; ++u) apply(u, r[u - u0][l]);
      }
    }
    for (; grp < ge; ++grp) {
      const Philox4 r = philox(seed, offset + uint64_t(grp));
      const int64_t u_end = std::min(units, 4 * grp + 4);
      for (int64_t u = 4 * grp; u < u_end; ++u) apply(u, r.v[u - 4 * grp]);
    }
  });
}

template void dropout<float>(int64_t, int64_t, const float*, float*, double, uint64_t, uint64_t);
template void dropout<double>(int64_t, int64_t, const double*, double*, double, uint64_t, uint64_t);

}  // namespace shallow::cpu
