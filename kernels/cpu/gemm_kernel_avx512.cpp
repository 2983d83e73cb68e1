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
// - kc: a kc x 32 micro-panel of B (128 B per k) is reused by every 12-row panel of A in the
//   block, so it should stay in L1: kc = 256 makes it 32 KiB, which L1 just misses, and the
//   misses are met by L2 at a rate far above the 128 B per 24 FMAs the kernel asks for.
//   kc also sets how often C is reloaded (once per kc steps), so it is not made smaller.
// - mc: the packed mc x kc block of A is read once per B micro-panel and must stay in L2:
//   240 x 256 floats = 240 KiB, a quarter of L2, leaving room for the B panel stream.
// - nc: the packed kc x nc block of B is shared by the threads and read from L3:
//   256 x 4096 floats = 4 MiB of the 32 MiB.
const MicroKernel<float>& avx512_kernel_f32() {
  static const MicroKernel<float> k{{MR, NR, 240, 256, 4096}, tile, epilogue};
  return k;
}

}  // namespace shallow::cpu::gemm_detail

#else  // a compiler or target without these flags: the dispatcher never picks this kernel

namespace shallow::cpu::gemm_detail {
const MicroKernel<float>& avx512_kernel_f32() { return generic_kernel_f32(); }
}  // namespace shallow::cpu::gemm_detail

#endif
