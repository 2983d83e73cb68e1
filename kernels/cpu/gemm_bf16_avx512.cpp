// The vdpbf16ps micro-kernel of gemm_bf16. This file alone is compiled with -mavx512bf16 (see
// kernels/CMakeLists.txt) and runs only after a run-time check of the CPU; it includes nothing
// but the intrinsics and its own declarations, so that no shared inline code picks up AVX-512.
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
constexpr int kRows = 12;
constexpr int kCols = 32;

// The sums of one tile into lo (columns 0-15) and hi (16-31) of its 12 rows: at pair step p,
// row r's pair of bf16 is pair_of(p, r), and the 32 columns' pairs are the words at b + 32 p.
template <class PairOf>
inline void tile_sums(int64_t pairs, PairOf pair_of, const uint32_t* b, __m512 lo[kRows],
                      __m512 hi[kRows]) {
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < kRows; ++r) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(pair_of(p, r));
      lo[r] = _mm512_dpbf16_ps(lo[r], ar, b0);
      hi[r] = _mm512_dpbf16_ps(hi[r], ar, b1);
    }
    b += kCols;
  }
}

inline void store_sums(const __m512 lo[kRows], const __m512 hi[kRows], float* ws, int64_t ldws,
                       bool accumulate) {
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

void micro_avx512(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws, int64_t ldws,
                  bool accumulate) {
  __m512 lo[kRows], hi[kRows];
  tile_sums(pairs, [a](int64_t p, int r) { return int(a[p * kRows + r]); }, b, lo, hi);
  store_sums(lo, hi, ws, ldws, accumulate);
}

void micro_transposed_avx512(int64_t pairs, const uint16_t* const* rows, const uint32_t* panel,
                             float* ws) {
  __m512 lo[kRows], hi[kRows];
  // Row r's pair p is elements 2p and 2p + 1 of the row, one 32-bit word as vdpbf16ps takes it.
  auto pair_of = [rows](int64_t p, int r) {
    int pair;
    __builtin_memcpy(&pair, rows[r] + 2 * p, 4);
    return pair;
  };
  tile_sums(pairs, pair_of, panel, lo, hi);
  store_sums(lo, hi, ws, kCols, false);
}

#else

bool avx512_compiled() { return false; }
void micro_avx512(int64_t, const uint32_t*, const uint32_t*, float*, int64_t, bool) {}
void micro_transposed_avx512(int64_t, const uint16_t* const*, const uint32_t*, float*) {}

#endif

}  // namespace shallow::cpu::gemm_bf16_detail
