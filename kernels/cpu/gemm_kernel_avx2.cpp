// The AVX2 + FMA float micro-kernel, for x86 CPUs without AVX-512. This file alone is compiled
// with AVX2 flags (and AVX-512 switched off, so it is a true AVX2 kernel even in a native build).
#include "kernels/cpu/gemm_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/cpu/gemm_epilogue.h"

namespace shallow::cpu::gemm_detail {
namespace {

// 6 x 16 tile: 12 ymm accumulators, two B vectors and one broadcast fit the 16 registers.
constexpr int MR = 6;
constexpr int NV = 2;  // vectors of 8 floats per row
constexpr int NR = 8 * NV;

void tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
          float beta) {
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        _mm256_storeu_ps(c + i * ldc + 8 * v, _mm256_mul_ps(va, acc[i][v]));
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        float* p = c + i * ldc + 8 * v;
        _mm256_storeu_ps(p, _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), _mm256_mul_ps(va, acc[i][v])));
      }
  }
}

void epilogue(float* c, int64_t ldc, int64_t m, int64_t n, const float* bias, bool per_row,
              GemmActivation act) {
  apply_epilogue(c, ldc, m, n, bias, per_row, act);
}

}  // namespace

// kc x 16 B micro-panel: 256 x 64 B = 16 KiB, half of a typical 32 KiB L1; A block
// 144 x 256 floats = 144 KiB in a 256 KiB or larger L2; B block 256 x 2048 floats = 2 MiB in L3.
const MicroKernel<float>& avx2_kernel_f32() {
  static const MicroKernel<float> k{
      {MR, NR, 144, 256, 2048}, tile, epilogue, pack_a<float>, pack_b<float>};
  return k;
}

}  // namespace shallow::cpu::gemm_detail

#else  // a compiler or target without these flags: the dispatcher never picks this kernel

namespace shallow::cpu::gemm_detail {
const MicroKernel<float>& avx2_kernel_f32() { return generic_kernel_f32(); }
}  // namespace shallow::cpu::gemm_detail

#endif
