// The vdpbf16ps micro-kernel of gemm_bf16 and the AVX-512 transposition its packing uses. This
// file alone is compiled with -mavx512bf16 (see kernels/CMakeLists.txt) and runs only after a
// run-time check of the CPU; it includes nothing but the intrinsics and its own declarations,
// so that no shared inline code picks up AVX-512.
#include "kernels/cpu/gemm_bf16_micro.h"

#if defined(__AVX512F__) && defined(__AVX512BF16__)
#include <immintrin.h>
#endif

namespace shallow::cpu::gemm_bf16_detail {

#if defined(__AVX512F__) && defined(__AVX512BF16__)

bool avx512_compiled() { return true; }

// 12 rows x 32 columns: 24 accumulators, 2 registers of B, one broadcast pair of A at a time
// (32 zmm registers in all). Each pair step is 24 independent vdpbf16ps, enough to hide their
// latency; the 2 B loads and 12 broadcasts per step stay within the load ports.
// The same loop with 8 rows (16 accumulators) is the short tile, for C's last rows where 12
// would overhang by much.
constexpr int kFullRows = 12, kShortRows = int(kShortTileRows);
constexpr int kCols = 32;

namespace {

// With kPrefetch, one cache line of `region` per pair step (the dot products leave the load
// ports and the scalar units room for it).
template <int kRows, bool kPrefetch>
void micro(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws, int64_t ldws,
           bool accumulate, const PrefetchRegion& region) {
  __m512 lo[kRows], hi[kRows];  // columns 0-15 and 16-31 of each row
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  PrefetchCursor prefetch(region);
  for (int64_t p = 0; p < pairs; ++p, a += kRows, b += kCols) {
    if (kPrefetch) prefetch.next();
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < kRows; ++r) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(int(a[r]));
      lo[r] = _mm512_dpbf16_ps(lo[r], ar, b0);
      hi[r] = _mm512_dpbf16_ps(hi[r], ar, b1);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) {
    float* row = ws + r * ldws;
    __m512 l = lo[r], h = hi[r];
    if (accumulate) {
      l = _mm512_add_ps(l, _mm512_loadu_ps(row));
      h = _mm512_add_ps(h, _mm512_loadu_ps(row + 16));
    }
    _mm512_storeu_ps(row, l);
    _mm512_storeu_ps(row + 16, h);
  }
}

}  // namespace

void micro_avx512(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws, int64_t ldws,
                  bool accumulate) {
  micro<kFullRows, false>(pairs, a, b, ws, ldws, accumulate, PrefetchRegion{});
}

void micro_avx512_prefetching(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws,
                              int64_t ldws, bool accumulate, const PrefetchRegion& region) {
  micro<kFullRows, true>(pairs, a, b, ws, ldws, accumulate, region);
}

void micro_avx512_short(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws,
                        int64_t ldws, bool accumulate, const PrefetchRegion& region) {
  micro<kShortRows, true>(pairs, a, b, ws, ldws, accumulate, region);
}

// GCC 12 warns of the undefined pass-through operand inside its own unpack and shuffle
// intrinsics (a false positive of -Wuninitialized at -O3); nothing of ours is uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
void transpose_pairs_avx512(const uint16_t* const* rows, int64_t p0, int64_t lanes, uint32_t* dst,
                            int64_t ldd) {
  __m512i r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(rows[i] + 2 * p0);
  // Within each 128-bit lane: pairs of rows interleaved by word, then by two words, so that
  // lane l of t[4 g + j] holds word 4 l + j of rows 4 g .. 4 g + 3.
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    const __m512i lo01 = _mm512_unpacklo_epi32(r[4 * g], r[4 * g + 1]);
    const __m512i hi01 = _mm512_unpackhi_epi32(r[4 * g], r[4 * g + 1]);
    const __m512i lo23 = _mm512_unpacklo_epi32(r[4 * g + 2], r[4 * g + 3]);
    const __m512i hi23 = _mm512_unpackhi_epi32(r[4 * g + 2], r[4 * g + 3]);
    t[4 * g] = _mm512_unpacklo_epi64(lo01, lo23);
    t[4 * g + 1] = _mm512_unpackhi_epi64(lo01, lo23);
    t[4 * g + 2] = _mm512_unpacklo_epi64(hi01, hi23);
    t[4 * g + 3] = _mm512_unpackhi_epi64(hi01, hi23);
  }
  // Then the 128-bit lanes: word q = 4 l + j of all 16 rows is lane l of t[j], t[4 + j],
  // t[8 + j], t[12 + j].
  const __mmask16 keep = __mmask16((1u << lanes) - 1);
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i even_a = _mm512_shuffle_i32x4(t[j], t[4 + j], 0x88);  // lanes 0, 2 of each
    const __m512i odd_a = _mm512_shuffle_i32x4(t[j], t[4 + j], 0xdd);   // lanes 1, 3
    const __m512i even_b = _mm512_shuffle_i32x4(t[8 + j], t[12 + j], 0x88);
    const __m512i odd_b = _mm512_shuffle_i32x4(t[8 + j], t[12 + j], 0xdd);
    _mm512_mask_storeu_epi32(dst + (j + 0) * ldd, keep, _mm512_shuffle_i32x4(even_a, even_b, 0x88));
    _mm512_mask_storeu_epi32(dst + (j + 8) * ldd, keep, _mm512_shuffle_i32x4(even_a, even_b, 0xdd));
    _mm512_mask_storeu_epi32(dst + (j + 4) * ldd, keep, _mm512_shuffle_i32x4(odd_a, odd_b, 0x88));
    _mm512_mask_storeu_epi32(dst + (j + 12) * ldd, keep, _mm512_shuffle_i32x4(odd_a, odd_b, 0xdd));
  }
}
#pragma GCC diagnostic pop

#else

bool avx512_compiled() { return false; }
void micro_avx512(int64_t, const uint32_t*, const uint32_t*, float*, int64_t, bool) {}
void micro_avx512_prefetching(int64_t, const uint32_t*, const uint32_t*, float*, int64_t, bool,
                              const PrefetchRegion&) {}
void micro_avx512_short(int64_t, const uint32_t*, const uint32_t*, float*, int64_t, bool,
                        const PrefetchRegion&) {}
void transpose_pairs_avx512(const uint16_t* const*, int64_t, int64_t, uint32_t*, int64_t) {}

#endif

}  // namespace shallow::cpu::gemm_bf16_detail
