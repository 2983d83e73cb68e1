// The AVX-512 float micro-kernel. This file alone is compiled with AVX-512 flags
// (kernels/CMakeLists.txt); the driver calls it only where the CPU reports AVX-512F.
#include "kernels/cpu/gemm_kernels.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/cpu/gemm_epilogue.h"

namespace shallow::cpu::gemm_detail {
namespace {

// A 12 x 32 tile of C lives in 24 zmm registers; each k step loads two vectors of B, broadcasts
// 12 values of A straight from memory into the FMAs, and issues 24 FMAs. 12 rows rather than 6
// halve the B loads per FMA; 32 registers leave room for the two B vectors and nothing else.
constexpr int MR = 12;
constexpr int NV = 2;  // vectors of 16 floats per row
constexpr int NR = 16 * NV;

void tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
          float beta) {
  // C is read and written only after the k loop, and its rows are often out in L3 or memory:
  // asking for them now hides the misses behind the loop (measured a few per cent on the ViT and square shapes).
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + i * ldc + 16 * v, _mm512_mul_ps(va, acc[i][v]));
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        float* p = c + i * ldc + 16 * v;
        _mm512_storeu_ps(p, _mm512_fmadd_ps(vb, _mm512_loadu_ps(p), _mm512_mul_ps(va, acc[i][v])));
      }
  }
}

void epilogue(float* c, int64_t ldc, int64_t m, int64_t n, const float* bias, bool per_row,
              GemmActivation act) {
  apply_epilogue(c, ldc, m, n, bias, per_row, act);
}

}  // namespace

// Cache blocks for Zen 4 (L1d 32 KiB, L2 1 MiB per core, L3 32 MiB shared):
// - kc: C is reloaded and stored once per kc steps, so kc is made large: 512. The kc x 32
//   micro-panel of B (64 KiB) then lives in L2, not L1, which costs nothing measurable: the
//   kernel asks for 128 B of B per 24 FMAs, far below what L2 delivers. Measured on the ViT
//   and square shapes, 512 beat 256 by 5-10 % and 384 by a little.
// - mc: the packed mc x kc block of A is swept once per B micro-panel and must stay in L2
//   beside that panel: 168 x 512 floats = 336 KiB, with 64 KiB of B, well inside 1 MiB.
// - nc: the packed kc x nc block of B is shared by the threads and read from L3:
//   512 x 4096 floats = 8 MiB of the 32 MiB, and N up to 4096 is packed in one block.
const MicroKernel<float>& avx512_kernel_f32() {
  static const MicroKernel<float> k{{MR, NR, 168, 512, 4096}, tile, epilogue};
  return k;
}

}  // namespace shallow::cpu::gemm_detail

#else  // a compiler or target without these flags: the dispatcher never picks this kernel

namespace shallow::cpu::gemm_detail {
const MicroKernel<float>& avx512_kernel_f32() { return generic_kernel_f32(); }
}  // namespace shallow::cpu::gemm_detail

#endif
