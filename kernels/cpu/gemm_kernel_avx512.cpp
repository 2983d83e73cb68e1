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
// The same loop with 8 rows (16 accumulators, still bound by the FMAs) is the short tile, for
// row counts that 12 would overhang by much (64 output channels of a convolution: 72 rows).
constexpr int MR = 12;
constexpr int kShortRows = 8;
constexpr int NV = 2;  // vectors of 16 floats per row
constexpr int NR = 16 * NV;

// With kPrefetch, one cache line of `region` is asked for per k step (the FMAs leave the
// load ports and the scalar units idle enough to absorb it).
template <int MR, bool kPrefetch>
void tile_rows_impl(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                    float alpha, float beta, const PrefetchRegion& region) {
  // C is read and written only after the k loop, and its rows are often out in L3 or memory:
  // asking for them now hides the misses behind the loop (a few per cent, measured).
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
  PrefetchCursor prefetch(region);
  for (int64_t k = 0; k < kc; ++k) {
    if (kPrefetch) prefetch.next();
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
      for (int v = 0; v < NV; ++v)
        _mm512_storeu_ps(c + i * ldc + 16 * v, _mm512_mul_ps(va, acc[i][v]));
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

template <int MR>
void tile_rows(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
               float beta) {
  tile_rows_impl<MR, false>(kc, a, b, c, ldc, alpha, beta, PrefetchRegion{});
}

void tile_prefetching(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                      float alpha, float beta, const PrefetchRegion& region) {
  tile_rows_impl<MR, true>(kc, a, b, c, ldc, alpha, beta, region);
}

void epilogue(float* c, int64_t ldc, int64_t m, int64_t n, const float* bias, bool per_row,
              GemmActivation act) {
  apply_epilogue(c, ldc, m, n, bias, per_row, act);
}

// Packing a panel whose lanes (rows of C's tile) each have their k-run contiguous at
// src + l * ld: the generic code moves it one element at a time; here 16 lanes x 16 steps are
// loaded as 16 vectors, transposed in registers, and stored as 16 k-rows (measured ~4x faster
// on the NT and NN operands). Lanes past the matrix are zero.
// GCC 12 takes the undefined pass-through operand inside these shuffle intrinsics for an
// uninitialized variable.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {  // pairs of lanes interleaved, per 128-bit block
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {  // groups of 4 lanes: u[i + j] holds step 4q + j in block q
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // A 4 x 4 transpose of 128-bit blocks for each j: step 4q + j gathers block q of r[4g + j].
  __m512 out[16];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512 v0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44);
    const __m512 v3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xEE);
    out[j] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    out[4 + j] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    out[8 + j] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    out[12 + j] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = out[i];
}

// One group of up to 16 lanes of a panel `width` wide: lanes [0, live) from src, the rest of
// the group's `lanes` zero. With the counts known at compile time (a full group, by far the
// most common) the loads need no per-lane test and the stores no mask.
template <int kLanes, int kLive>
void pack_group(const float* s, int64_t ld, int64_t kc, int64_t live, int64_t width, float* d) {
  const int64_t n_live = kLive >= 0 ? kLive : live;
  const __mmask16 write = __mmask16((1u << kLanes) - 1);
  int64_t k = 0;
  for (; k + 16 <= kc; k += 16) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int l = 0; l < 16; ++l)
      r[l] = l < n_live ? _mm512_loadu_ps(s + l * ld + k) : _mm512_setzero_ps();
    transpose16x16(r);
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      if (kLanes == 16)
        _mm512_storeu_ps(d + (k + i) * width, r[i]);
      else
        _mm512_mask_storeu_ps(d + (k + i) * width, write, r[i]);
    }
  }
  for (; k < kc; ++k)
    for (int l = 0; l < kLanes; ++l) d[k * width + l] = l < n_live ? s[l * ld + k] : 0.0f;
}

template <int kWidth>
void pack_panel_lanes(const float* src, int64_t ld, int64_t kc, int64_t valid, float* dst) {
  static_assert(kWidth % 4 == 0 && kWidth <= 32);
  constexpr int kFirst = kWidth < 16 ? kWidth : 16, kSecond = kWidth - kFirst;
  if (valid >= kFirst)
    pack_group<kFirst, kFirst>(src, ld, kc, kFirst, kWidth, dst);
  else
    pack_group<kFirst, -1>(src, ld, kc, valid, kWidth, dst);
  if constexpr (kSecond > 0) {
    const int64_t live = valid - kFirst < 0 ? 0 : valid - kFirst;
    if (live >= kSecond)
      pack_group<kSecond, kSecond>(src + 16 * ld, ld, kc, kSecond, kWidth, dst + 16);
    else
      pack_group<kSecond, -1>(src + 16 * ld, ld, kc, live, kWidth, dst + 16);
  }
}

// Packing a panel whose lanes (rows of C's tile) each have their k-run contiguous at
// src + l * ld, for the widths this kernel packs (its tiles' 12 and 8 rows, its 32 columns).
void pack_lane_major(const float* src, int64_t ld, int64_t kc, int64_t valid, int width,
                     float* dst) {
  switch (width) {
    case 8:
      return pack_panel_lanes<8>(src, ld, kc, valid, dst);
    case 12:
      return pack_panel_lanes<12>(src, ld, kc, valid, dst);
    case 32:
      return pack_panel_lanes<32>(src, ld, kc, valid, dst);
    default:
      break;
  }
  for (int64_t k = 0; k < kc; ++k)
    for (int l = 0; l < width; ++l) dst[k * width + l] = l < valid ? src[l * ld + k] : 0.0f;
}

#pragma GCC diagnostic pop

void pack_a_avx512(bool trans_a, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
                   int64_t kc, int64_t mr, float* dst) {
  if (trans_a) return pack_a<float>(trans_a, A, lda, i0, mc, k0, kc, mr, dst);
  for (int64_t p = 0; p * mr < mc; ++p)
    pack_lane_major(A + (i0 + p * mr) * lda + k0, lda, kc, mc - p * mr, int(mr), dst + p * mr * kc);
}

void pack_b_avx512(bool trans_b, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                   int64_t nc, int64_t nr, float* dst) {
  if (!trans_b) return pack_b<float>(trans_b, B, ldb, k0, kc, j0, nc, nr, dst);
  for (int64_t p = 0; p * nr < nc; ++p)
    pack_lane_major(B + (j0 + p * nr) * ldb + k0, ldb, kc, nc - p * nr, int(nr), dst + p * nr * kc);
}

}  // namespace

// Cache blocks for Zen 4 (L1d 32 KiB, L2 1 MiB per core, L3 32 MiB shared):
// - kc: C is reloaded and stored once per kc steps, and C is often out in memory, so kc is
//   made large: 1024, which takes the common K <= 1024 (the ViT's 768, a batch of 1024 in a
//   weight gradient) in one pass over C. The kc x 32 micro-panel of B (128 KiB) then lives in
//   L2, not L1, which costs nothing measurable: the kernel asks for 128 B of B per 24 FMAs,
//   far below what L2 delivers. Measured on 2 threads, best of 16 runs each, against 512:
//   1024^3 201 -> 213 GFLOP/s, ViT qkv (K 768) 199 -> 219, MLP down (K 3072) 200 -> 214,
//   EEG x W^T (K 4250) 202 -> 211, the others within 1-3 % either way.
// - mc: the packed mc x kc block of A is swept once per B micro-panel and must stay in L2
//   beside that panel: 84 x 1024 floats = 336 KiB, with 128 KiB of B, well inside 1 MiB.
// - nc: the packed kc x nc block of B is shared by the threads and read from L3:
//   1024 x 4096 floats = 16 MiB of the 32 MiB, and N up to 4096 is packed in one block.
const MicroKernel<float>& avx512_kernel_f32() {
  static const MicroKernel<float> k{
      {MR, NR, 84, 1024, 4096}, tile_rows<MR>, epilogue, pack_a_avx512, pack_b_avx512,
      gemm_nt_unpacked_avx512, 32, tile_rows<kShortRows>, kShortRows, tile_prefetching};
  return k;
}

}  // namespace shallow::cpu::gemm_detail

#else  // a compiler or target without these flags: the dispatcher never picks this kernel

namespace shallow::cpu::gemm_detail {
const MicroKernel<float>& avx512_kernel_f32() { return generic_kernel_f32(); }
}  // namespace shallow::cpu::gemm_detail

#endif
