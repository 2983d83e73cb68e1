// bf16 attention forward on vdpbf16ps (attention_bf16.h). Built with AVX512_BF16 flags
// whatever the target (kernels/CMakeLists.txt); called only after the run-time check below.
// The tiling and the online softmax are the f32 kernel's (attention_f32.cpp); the two tile
// products read operands packed as bf16 pairs, the layout of vdpbf16ps:
//   scores  S[i][j] = sum_p  q-word(i, p) . k-word(p, j), a word holding elements 2p, 2p + 1;
//   output  O[i][e] = sum_q  P-word(i, q) . v-word(q, e), a word holding keys 2q, 2q + 1.
// q's words are read in place (a row's pairs are adjacent); k and v are packed once per batch
// entry by the thread working on it.
#include "kernels/cpu/attention_bf16.h"

#if defined(__AVX512F__) && defined(__AVX512BF16__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__)
// GCC 12's AVX-512 intrinsics start some results from an undefined register and then warn
// about it once inlined; the lanes are all written.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_simd.h"
#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {

using namespace attention_simd;

constexpr int64_t kQueryTile = 72;  // as the f32 kernel: 256 keys hold a ViT's 197 tokens
constexpr int64_t kKeyTile = 256;   // even: key tiles start on a pair
constexpr float kInf = std::numeric_limits<float>::infinity();

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

inline __m512i broadcast_word(const void* p) {
  int32_t w;
  std::memcpy(&w, p, sizeof(w));
  return _mm512_set1_epi32(w);
}

// k and v of one batch entry as words: k_words[p * ld_k + j] = (k[j][2p], k[j][2p + 1]) and
// v_words[q * ld_v + e] = (v[2q][e], v[2q + 1][e]), zero past Lk and Ev. Kept while a thread's
// tasks stay on the entry.
struct PackedEntry {
  int64_t batch = -1, ld_k = 0, ld_v = 0;
  std::vector<uint32_t> k_words, v_words;

  void pack(const AttentionArgs<bf16>& a, int64_t b) {
    if (b == batch) return;
    batch = b;
    ld_k = round_up(std::max<int64_t>(a.Lk, 1), 16);
    ld_v = round_up(std::max<int64_t>(a.Ev, 1), 16);
    const int64_t pairs = a.E / 2, key_pairs = (a.Lk + 1) / 2;
    k_words.assign(size_t(pairs * ld_k), 0u);
    v_words.assign(size_t(key_pairs * ld_v), 0u);
    // Words of 16 keys at once: a gather of their p-th pairs (offsets in bf16 elements).
    const bf16* k = a.k + a.k_offset[b];
    for (int64_t j0 = 0; j0 < a.Lk; j0 += 16) {
      const __mmask16 m = first_lanes(a.Lk - j0);
      const __m512i rows = _mm512_mullo_epi32(
          _mm512_add_epi32(_mm512_set1_epi32(int(j0)),
                           _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)),
          _mm512_set1_epi32(int(a.k_ld)));
      for (int64_t p = 0; p < pairs; ++p) {
        const __m512i at = _mm512_add_epi32(rows, _mm512_set1_epi32(int(2 * p)));
        _mm512_mask_storeu_epi32(k_words.data() + p * ld_k + j0, m,
                                 _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, at, k, 2));
      }
    }
    // Two rows of v side by side: each bf16 widened to a word's low half, the next row's
    // shifted into the high half.
    const bf16* v = a.v + a.v_offset[b];
    for (int64_t q = 0; q < key_pairs; ++q) {
      const bf16* even = v + 2 * q * a.v_ld;
      const bool has_odd = 2 * q + 1 < a.Lk;
      for (int64_t e = 0; e < a.Ev; e += 16) {
        const __mmask16 m = first_lanes(a.Ev - e);
        const __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, &even[e].bits));
        const __m512i hi = has_odd
            ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, &even[a.v_ld + e].bits))
            : _mm512_setzero_si512();
        _mm512_mask_storeu_epi32(v_words.data() + q * ld_v + e, m,
                                 _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
      }
    }
  }
};

// C[MR x cols] (+)= alpha * sum over `steps` of word(a, i, s) . b-row s, where row i's word s
// is at a_bytes + i * a_row_bytes + 4 s and b-row s at b + s * ldb (16 * NV words, zero past
// the operand). cols <= 16 * NV; the last vector is masked on store.
template <int MR, int NV>
void dot_tile(int64_t steps, int64_t cols, float alpha, const char* a_bytes, int64_t a_row_bytes,
              const uint32_t* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  const __mmask16 last = first_lanes(cols - 16 * (NV - 1));
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t s = 0; s < steps; ++s) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + s * ldb + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512bh ai = (__m512bh)broadcast_word(a_bytes + i * a_row_bytes + 4 * s);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 m = v == NV - 1 ? last : __mmask16(0xFFFF);
      float* ci = c + i * ldc + 16 * v;
      __m512 r = _mm512_mul_ps(va, acc[i][v]);
      if (accumulate) r = _mm512_add_ps(_mm512_maskz_loadu_ps(m, ci), r);
      _mm512_mask_storeu_ps(ci, m, r);
    }
}

template <int NV>
void dot_rows(int64_t rows, int64_t steps, int64_t cols, float alpha, const char* a,
              int64_t a_row_bytes, const uint32_t* b, int64_t ldb, float* c, int64_t ldc,
              bool accumulate) {
  int64_t i = 0;
  for (; i + kBlockRows <= rows; i += kBlockRows)
    dot_tile<kBlockRows, NV>(steps, cols, alpha, a + i * a_row_bytes, a_row_bytes, b, ldb,
                             c + i * ldc, ldc, accumulate);
  const char* ar = a + i * a_row_bytes;
  float* cr = c + i * ldc;
  switch (rows - i) {
    case 0: break;
    case 1: dot_tile<1, NV>(steps, cols, alpha, ar, a_row_bytes, b, ldb, cr, ldc, accumulate); break;
    case 2: dot_tile<2, NV>(steps, cols, alpha, ar, a_row_bytes, b, ldb, cr, ldc, accumulate); break;
    case 3: dot_tile<3, NV>(steps, cols, alpha, ar, a_row_bytes, b, ldb, cr, ldc, accumulate); break;
    case 4: dot_tile<4, NV>(steps, cols, alpha, ar, a_row_bytes, b, ldb, cr, ldc, accumulate); break;
    default: dot_tile<5, NV>(steps, cols, alpha, ar, a_row_bytes, b, ldb, cr, ldc, accumulate); break;
  }
}

// C[rows x cols] (+)= alpha * A B over `steps` word steps, columns in blocks of 64.
void dot_gemm(int64_t rows, int64_t cols, int64_t steps, float alpha, const char* a,
              int64_t a_row_bytes, const uint32_t* b, int64_t ldb, float* c, int64_t ldc,
              bool accumulate) {
  for (int64_t j = 0; j < cols; j += 64) {
    const int64_t n = std::min<int64_t>(64, cols - j);
    switch ((n + 15) / 16) {
      case 1: dot_rows<1>(rows, steps, n, alpha, a, a_row_bytes, b + j, ldb, c + j, ldc, accumulate); break;
      case 2: dot_rows<2>(rows, steps, n, alpha, a, a_row_bytes, b + j, ldb, c + j, ldc, accumulate); break;
      case 3: dot_rows<3>(rows, steps, n, alpha, a, a_row_bytes, b + j, ldb, c + j, ldc, accumulate); break;
      default: dot_rows<4>(rows, steps, n, alpha, a, a_row_bytes, b + j, ldb, c + j, ldc, accumulate); break;
    }
  }
}

// n probabilities as n / 2 words of bf16 pairs (the last pair's high half 0 where n is odd).
void to_pair_words(const float* p, int64_t n, uint32_t* words) {
  for (int64_t c = 0; c < n; c += 32) {
    const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(n - c), p + c);
    const __m512 hi = c + 16 < n ? _mm512_maskz_loadu_ps(first_lanes(n - c - 16), p + c + 16)
                                 : _mm512_setzero_ps();
    const __m512i w = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    _mm512_mask_storeu_epi32(words + c / 2, first_lanes((std::min<int64_t>(32, n - c) + 1) / 2), w);
  }
}

// Query rows [i0, i0 + rows) of batch entry b.
void forward_tile(const AttentionArgs<bf16>& a, float scale, const PackedEntry& kv, int64_t b,
                  int64_t i0, int64_t rows, bf16* out, float* S, uint32_t* P, float* acc,
                  float* run_max, float* run_sum) {
  std::fill(acc, acc + rows * a.Ev, 0.0f);
  std::fill(run_max, run_max + rows, -kInf);
  std::fill(run_sum, run_sum + rows, 0.0f);
  const char* q = reinterpret_cast<const char*>(a.q + a.q_offset[b] + i0 * a.q_ld);
  const int64_t q_row_bytes = a.q_ld * int64_t(sizeof(bf16)), p_ld = kKeyTile / 2;
  const int64_t j_end = a.causal ? std::min(a.Lk, i0 + rows) : a.Lk;
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeyTile) {
    const int64_t cols = std::min(kKeyTile, j_end - j0);
    dot_gemm(rows, cols, a.E / 2, scale, q, q_row_bytes, kv.k_words.data() + j0, kv.ld_k, S,
             kKeyTile, false);
    if (a.causal && j0 + cols > i0 + 1)  // the tile reaches past the diagonal
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = std::max<int64_t>(0, i0 + r + 1 - j0); c < cols; ++c) S[r * kKeyTile + c] = -kInf;
    for (int64_t r = 0; r < rows; ++r) {
      float* s = S + r * kKeyTile;
      const float new_max = std::max(run_max[r], row_max(s, cols));
      if (new_max == -kInf) {  // nothing attended so far: contribute nothing
        std::fill(s, s + cols, 0.0f);
      } else {
        const float rescale = std::exp(run_max[r] - new_max);
        run_sum[r] = run_sum[r] * rescale + exp_shifted(s, cols, new_max);
        run_max[r] = new_max;
        if (rescale != 1.0f) scale_row(acc + r * a.Ev, a.Ev, rescale);
      }
      to_pair_words(s, cols, P + r * p_ld);
    }
    dot_gemm(rows, a.Ev, (cols + 1) / 2, 1.0f, reinterpret_cast<const char*>(P),
             p_ld * int64_t(sizeof(uint32_t)), kv.v_words.data() + j0 / 2 * kv.ld_v, kv.ld_v, acc,
             a.Ev, true);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float* acc_row = acc + r * a.Ev;
    bf16* o = out + (b * a.Lq + i0 + r) * a.Ev;
    // A row that attends nothing gets zeros, as PyTorch.
    const __m512 inv = _mm512_set1_ps(run_sum[r] > 0.0f ? 1.0f / run_sum[r] : 0.0f);
    for (int64_t e = 0; e < a.Ev; e += 16) {
      const __mmask16 m = first_lanes(a.Ev - e);
      const __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, acc_row + e), inv);
      _mm256_mask_storeu_epi16(&o[e].bits, m, (__m256i)_mm512_cvtneps_pbh(x));
    }
  }
}

}  // namespace

bool attention_bf16_available() {
  static const bool available = __builtin_cpu_supports("avx512bf16") &&
                                __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vl");
  return available;
}

void attention_forward_bf16(const AttentionArgs<bf16>& a, float scale, bf16* out) {
  const int64_t q_tiles = (a.Lq + kQueryTile - 1) / kQueryTile;
  parallel_for(0, a.batch * q_tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> S(size_t(kQueryTile * kKeyTile)), acc(size_t(kQueryTile * a.Ev));
    std::vector<uint32_t> P(size_t(kQueryTile * kKeyTile / 2));
    std::vector<float> run_max(kQueryTile), run_sum(kQueryTile);
    PackedEntry kv;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / q_tiles, i0 = (t % q_tiles) * kQueryTile;
      kv.pack(a, b);
      forward_tile(a, scale, kv, b, i0, std::min(kQueryTile, a.Lq - i0), out, S.data(), P.data(),
                   acc.data(), run_max.data(), run_sum.data());
    }
  });
}

}  // namespace shallow::cpu

#else  // built without AVX512_BF16: never available

namespace shallow::cpu {
bool attention_bf16_available() { return false; }
void attention_forward_bf16(const AttentionArgs<bf16>&, float, bf16*) {}
}  // namespace shallow::cpu

#endif
