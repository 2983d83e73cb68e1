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

void micro_avx512(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws, int64_t ldws,
                  bool accumulate) {
  __m512 lo[kRows], hi[kRows];
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < kRows; ++r) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(int(a[r]));
      lo[r] = _mm512_dpbf16_ps(lo[r], ar, b0);
      hi[r] = _mm512_dpbf16_ps(hi[r], ar, b1);
    }
    a += kRows;
    b += kCols;
  }
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) {
    float* row = ws + r * ldws;
    if (accumulate) {
      lo[r] = _mm512_add_ps(lo[r], _mm512_loadu_ps(row));
      hi[r] = _mm512_add_ps(hi[r], _mm512_loadu_ps(row + 16));
    }
    _mm512_storeu_ps(row, lo[r]);
    _mm512_storeu_ps(row + 16, hi[r]);
  }
}

void micro_transposed_avx512(int64_t pairs, const uint16_t* const* rows, const uint32_t* panel,
                             float* ws) {
  __m512 lo[kRows], hi[kRows];
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(panel + 16);
#pragma GCC unroll 12
    for (int r = 0; r < kRows; ++r) {
      int pair;  // elements 2p and 2p + 1 of row r, as vdpbf16ps takes them
      __builtin_memcpy(&pair, rows[r] + 2 * p, 4);
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(pair);
      lo[r] = _mm512_dpbf16_ps(lo[r], ar, b0);
      hi[r] = _mm512_dpbf16_ps(hi[r], ar, b1);
    }
    panel += kCols;
  }
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) {
    _mm512_storeu_ps(ws + r * kCols, lo[r]);
    _mm512_storeu_ps(ws + r * kCols + 16, hi[r]);
  }
}

#else

bool avx512_compiled() { return false; }
void micro_avx512(int64_t, const uint32_t*, const uint32_t*, float*, int64_t, bool) {}
void micro_transposed_avx512(int64_t, const uint16_t* const*, const uint32_t*, float*) {}

#endif

}  // namespace shallow::cpu::gemm_bf16_detail
