// Products with few rows of A and a transposed B (a linear layer's x W^T at batch 1), on
// AVX-512, without packing B. The packed path copies all of B (the weight) into panels on every
// call, which at a few dozen rows of A costs as much as the product. Here the roles swap: the
// rows of A (few) are packed as the vector operand, and the micro-kernel broadcasts B's values
// straight from its rows, making 12 x 32 tiles of C^T that are stored transposed. Compiled with
// AVX-512 flags (kernels/CMakeLists.txt); the driver reaches it through the AVX-512 kernel.
#include "kernels/cpu/gemm_kernels.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

namespace shallow::cpu::gemm_detail {
namespace {

constexpr int kRowsB = 12;  // rows of B (columns of C) per tile: broadcast, 24 accumulators
constexpr int kLanes = 32;  // rows of A (rows of C) per tile: two vectors

// C[i, j0 + r] = alpha * sum_k a_t[k][i] b[r][k] + beta * C[i, j0 + r] for i < m, r < n, where
// a_t is one packed panel of A (k-major, 32 rows of A per k) and b points at row j0 of B.
// NV vectors of the panel are used: 1 where m <= 16 (a last panel that is half empty).
template <int NV>
void tile_transposed(int64_t K, const float* a_t, const float* b, int64_t ldb, int64_t m,
                     int64_t n, float alpha, float beta, float* C, int64_t ldc) {
  const float* rows[kRowsB];
  for (int r = 0; r < kRowsB; ++r) rows[r] = b + (r < n ? r : 0) * ldb;  // spare rows repeat
  __m512 acc[kRowsB][NV];
#pragma GCC unroll 12
  for (int r = 0; r < kRowsB; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 a[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) a[v] = _mm512_loadu_ps(a_t + k * kLanes + 16 * v);
#pragma GCC unroll 12
    for (int r = 0; r < kRowsB; ++r) {
      const __m512 w = _mm512_set1_ps(rows[r][k]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(w, a[v], acc[r][v]);
    }
  }
  // The tile is C^T: row r holds column j0 + r of C for 16 NV rows. Through a buffer, column
  // by column into C's rows.
  alignas(64) float t[kRowsB][16 * NV];
#pragma GCC unroll 12
  for (int r = 0; r < kRowsB; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm512_store_ps(t[r] + 16 * v, acc[r][v]);
  for (int64_t i = 0; i < m; ++i) {
    float* c = C + i * ldc;
    for (int64_t r = 0; r < n; ++r) {
      const float v = alpha * t[r][i];
      c[r] = beta == 0.0f ? v : v + beta * c[r];
    }
  }
}

}  // namespace

void gemm_nt_unpacked_avx512(int64_t M, int64_t j0, int64_t j1, int64_t K, float alpha,
                             const float* A_packed, const float* B, int64_t ldb, float beta,
                             float* C, int64_t ldc) {
  // k blocks outside, so that A's share of a block (M x kc) stays in L2 and the 12 rows of B a
  // tile broadcasts (12 x kc) in L1 while A's panels pass them; every block after the first
  // adds onto C.
  constexpr int64_t kc_max = 768;  // ViT-B's K in one block; its MLP's 3072 in four
  for (int64_t k0 = 0; k0 < K; k0 += kc_max) {
    const int64_t kc = K - k0 < kc_max ? K - k0 : kc_max;
    const float beta_k = k0 == 0 ? beta : 1.0f;
    for (int64_t j = j0; j < j1; j += kRowsB) {
      const int64_t n = j1 - j < kRowsB ? j1 - j : kRowsB;
      for (int64_t i = 0; i < M; i += kLanes) {
        const int64_t m = M - i < kLanes ? M - i : kLanes;
        (m > 16 ? tile_transposed<2> : tile_transposed<1>)(kc, A_packed + i * K + k0 * kLanes,
                                                          B + j * ldb + k0, ldb, m, n, alpha,
                                                          beta_k, C + i * ldc + j, ldc);
      }
    }
  }
}

}  // namespace shallow::cpu::gemm_detail

#endif
