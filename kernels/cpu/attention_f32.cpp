#include "kernels/cpu/attention_f32.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/parallel.h"

#if defined(__AVX512F__) && defined(__FMA__)
// GCC 12's AVX-512 intrinsics start some results from an undefined register and then warn
// about it once inlined; the lanes are all written.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/cpu/attention_simd.h"

namespace shallow::cpu::attention_detail {
namespace {

using namespace attention_simd;

// Query rows and keys per tile. The score tile (72 x 256 floats, 72 KB) and the rows of q, k^T
// and v it meets stay in L2; the 6-row register blocks (12 to a tile) stream over them. 256
// keys cover a ViT's 197 tokens in one tile, so its softmax never rescales. 48 to 96 rows and
// 128 or 256 keys measured within a few per cent of each other on Zen 4; 72 x 256 was ahead.
constexpr int64_t kQueryTile = kQueryTileF32;
constexpr int64_t kKeyTile = kKeyTileF32;
constexpr float kInf = std::numeric_limits<float>::infinity();

int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }
int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

int64_t key_end(const AttentionArgs<float>& a, int64_t i1) {
  return a.causal ? std::min(a.Lk, i1) : a.Lk;
}

// k^T (and v^T when needed) of one batch entry, E x Lk, so that the tile products read keys
// along vectors. A thread packs an entry once and keeps it while its tasks stay on that entry
// (parallel_for hands each thread one contiguous run of tasks).
struct TransposedKeys {
  int64_t ld = 0, batch = -1;
  std::vector<float> kt, vt;

  void pack(const AttentionArgs<float>& a, int64_t b, bool with_v) {
    if (b == batch) return;
    batch = b;
    ld = round_up(std::max<int64_t>(a.Lk, 1), 16);
    kt.resize(size_t(a.E * ld));
    transpose(a.k + a.k_offset[b], a.k_ld, a.Lk, a.E, kt.data());
    if (with_v) {
      vt.resize(size_t(a.Ev * ld));
      transpose(a.v + a.v_offset[b], a.v_ld, a.Lk, a.Ev, vt.data());
    }
  }

  // 16 rows at a time: one gather of their e-th elements gives 16 consecutive floats of
  // destination row e.
  void transpose(const float* x, int64_t x_ld, int64_t rows, int64_t cols, float* dst) const {
    if (x_ld >= (int64_t(1) << 26)) {  // the gather's 32-bit offsets would overflow
      for (int64_t j = 0; j < rows; ++j)
        for (int64_t e = 0; e < cols; ++e) dst[e * ld + j] = x[j * x_ld + e];
      return;
    }
    const __m512i offsets = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(int(x_ld)));
    // The rows usually come from memory or L3: asking for all of them first overlaps the misses.
    for (int64_t j = 0; j < rows; ++j)
      for (int64_t e = 0; e < cols; e += 16)
        _mm_prefetch(reinterpret_cast<const char*>(x + j * x_ld + e), _MM_HINT_T1);
    for (int64_t j0 = 0; j0 < rows; j0 += 16) {
      const __mmask16 m = first_lanes(rows - j0);
      const float* block = x + j0 * x_ld;
      for (int64_t e = 0; e < cols; ++e)
        _mm512_mask_storeu_ps(dst + e * ld + j0, m,
                              _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, offsets, block + e, 4));
    }
  }
};

// S = scale * q_{i0..} k_{j0..}^T + mask, -inf where masked out or in the causal future.
// S is rows x cols with rows ldS apart.
void score_tile(const AttentionArgs<float>& a, const TransposedKeys& keys, int64_t b, int64_t i0,
                int64_t rows, int64_t j0, int64_t cols, float* S, int64_t ldS) {
  tile_gemm(rows, cols, a.E, a.scale, a.q + a.q_offset[b] + i0 * a.q_ld, a.q_ld, 1,
            keys.kt.data() + j0, keys.ld, S, ldS, false);
  const AttentionMask<float>& m = a.mask;
  if (m.additive || m.keep) {
    for (int64_t r = 0; r < rows; ++r) {
      float* row = S + r * ldS;
      const int64_t at = m.offset[b] + (i0 + r) * m.row_stride + j0 * m.col_stride;
      if (m.additive)
        for (int64_t c = 0; c < cols; ++c) row[c] += m.additive[at + c * m.col_stride];
      else
        for (int64_t c = 0; c < cols; ++c)
          if (!m.keep[at + c * m.col_stride]) row[c] = -kInf;
    }
  }
  if (a.causal && j0 + cols > i0 + 1)  // the tile reaches past the diagonal
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = std::max<int64_t>(0, i0 + r + 1 - j0); c < cols; ++c) S[r * ldS + c] = -kInf;
}

// Forward of query rows [i0, i0 + rows) of batch entry b, with the online softmax.
void forward_tile(const AttentionArgs<float>& a, const TransposedKeys& keys, int64_t b,
                  int64_t i0, int64_t rows, float* out, float* lse, float* S, float* run_max,
                  float* run_sum) {
  float* acc = out + (b * a.Lq + i0) * a.Ev;  // accumulate straight into the output rows
  std::fill(acc, acc + rows * a.Ev, 0.0f);
  std::fill(run_max, run_max + rows, -kInf);
  std::fill(run_sum, run_sum + rows, 0.0f);
  const int64_t j_end = key_end(a, i0 + rows);
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeyTile) {
    const int64_t cols = std::min(kKeyTile, j_end - j0);
    score_tile(a, keys, b, i0, rows, j0, cols, S, kKeyTile);
    for (int64_t r = 0; r < rows; ++r) {
      float* s = S + r * kKeyTile;
      const float new_max = std::max(run_max[r], row_max(s, cols));
      if (new_max == -kInf) {  // nothing attended so far: contribute nothing
        std::fill(s, s + cols, 0.0f);
        continue;
      }
      // What was summed under the old maximum, rescaled to the new one.
      const float rescale = std::exp(run_max[r] - new_max);
      run_sum[r] = run_sum[r] * rescale + exp_shifted(s, cols, new_max);
      run_max[r] = new_max;
      if (rescale != 1.0f) scale_row(acc + r * a.Ev, a.Ev, rescale);
    }
    tile_gemm(rows, a.Ev, cols, 1.0f, S, kKeyTile, 1, a.v + a.v_offset[b] + j0 * a.v_ld, a.v_ld,
              acc, a.Ev, true);
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* acc_row = acc + r * a.Ev;
    if (run_sum[r] > 0.0f) {
      const __m512 d = _mm512_set1_ps(run_sum[r]);
      for (int64_t e = 0; e < a.Ev; e += 16) {
        const __mmask16 m = first_lanes(a.Ev - e);
        _mm512_mask_storeu_ps(acc_row + e, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, acc_row + e), d));
      }
      lse[b * a.Lq + i0 + r] = run_max[r] + std::log(run_sum[r]);
    } else {  // every key masked out: zeros, as PyTorch
      std::fill(acc_row, acc_row + a.Ev, 0.0f);
      lse[b * a.Lq + i0 + r] = kInf;
    }
  }
}

// The per-tile work of the backward. Each query tile of an entry meets each of its key tiles
// once, in the same order whichever pass does it (key gradients over query tiles in order,
// query gradients over key tiles in order), so the one-pass and two-pass schedules give the
// same bits.
struct BackwardTile {
  const AttentionArgs<float>& a;
  const float* lse;
  const float* D;  // D_i = dO_i . O_i
  const float* grad_out;
  std::vector<float> P = std::vector<float>(size_t(kQueryTile * kKeyTile));
  std::vector<float> dS = std::vector<float>(size_t(kQueryTile * kKeyTile));

  // P and dS of query rows [i0, i0 + rows) against keys [j0, j0 + cols); also dV += P^T dO
  // when gv_tile is set.
  void probabilities_and_score_grads(const TransposedKeys& keys, int64_t b, int64_t i0,
                                     int64_t rows, int64_t j0, int64_t cols, float* gv_tile) {
    score_tile(a, keys, b, i0, rows, j0, cols, P.data(), kKeyTile);
    for (int64_t r = 0; r < rows; ++r)  // lse = +inf (nothing attended) gives zeros
      exp_shifted(P.data() + r * kKeyTile, cols, lse[b * a.Lq + i0 + r]);
    const float* dO = grad_out + (b * a.Lq + i0) * a.Ev;
    if (gv_tile) tile_gemm(cols, a.Ev, rows, 1.0f, P.data(), 1, kKeyTile, dO, a.Ev, gv_tile, a.Ev, true);
    // dP = dO v^T, then dS = P * (dP - D).
    tile_gemm(rows, cols, a.Ev, 1.0f, dO, a.Ev, 1, keys.vt.data() + j0, keys.ld, dS.data(), kKeyTile, false);
    for (int64_t r = 0; r < rows; ++r) {
      const __m512 d = _mm512_set1_ps(D[b * a.Lq + i0 + r]);
      float* ds = dS.data() + r * kKeyTile;
      const float* p = P.data() + r * kKeyTile;
      for (int64_t c = 0; c < cols; c += 16) {
        const __mmask16 m = first_lanes(cols - c);
        const __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, ds + c), d);
        _mm512_mask_storeu_ps(ds + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + c), g));
      }
    }
  }

  // dK += scale dS^T q.
  void add_key_grads(int64_t b, int64_t i0, int64_t rows, int64_t cols, float* gk_tile) {
    tile_gemm(cols, a.E, rows, a.scale, dS.data(), 1, kKeyTile, a.q + a.q_offset[b] + i0 * a.q_ld,
              a.q_ld, gk_tile, a.E, true);
  }

  // dQ += scale dS k.
  void add_query_grads(int64_t b, int64_t rows, int64_t j0, int64_t cols, float* gq_tile) {
    tile_gemm(rows, a.E, cols, a.scale, dS.data(), kKeyTile, 1, a.k + a.k_offset[b] + j0 * a.k_ld,
              a.k_ld, gq_tile, a.E, true);
  }
};

// The first query tile that reaches key j0 under the causal mask (tiles stay aligned to
// multiples of kQueryTile, as the query pass cuts them).
int64_t first_query_tile(const AttentionArgs<float>& a, int64_t j0) {
  return a.causal ? std::min(j0, a.Lq) / kQueryTile * kQueryTile : 0;
}

}  // namespace

bool have_f32_kernels() { return true; }

void exp_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    _mm512_mask_storeu_ps(y + i, m, exp_ps(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void forward_f32(const AttentionArgs<float>& a, float* out, float* lse) {
  const int64_t q_tiles = tiles(a.Lq, kQueryTile);
  parallel_for(0, a.batch * q_tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> S(size_t(kQueryTile * kKeyTile)), run_max(kQueryTile), run_sum(kQueryTile);
    TransposedKeys keys;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / q_tiles, i0 = (t % q_tiles) * kQueryTile;
      keys.pack(a, b, false);
      forward_tile(a, keys, b, i0, std::min(kQueryTile, a.Lq - i0), out, lse, S.data(),
                   run_max.data(), run_sum.data());
    }
  });
}

void backward_f32(const AttentionArgs<float>& a, const float* out, const float* lse,
                  const float* grad_out, float* gq, float* gk, float* gv) {
  std::vector<float> D(size_t(a.batch * a.Lq));
  parallel_for(0, a.batch * a.Lq, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.Ev)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   float d = 0;
                   for (int64_t e = 0; e < a.Ev; ++e) d += grad_out[r * a.Ev + e] * out[r * a.Ev + e];
                   D[size_t(r)] = d;
                 }
               });
  const int64_t k_tiles = tiles(a.Lk, kKeyTile), q_tiles = tiles(a.Lq, kQueryTile);
  auto zero = [](float* p, int64_t n) {
    if (p) std::fill(p, p + n, 0.0f);
  };

  // Enough entries to keep every thread busy: one pass per entry, each thread owning whole
  // entries, so that the query gradients gather over key tiles without two threads adding
  // into the same rows.
  if (a.batch >= 2 * num_threads()) {
    parallel_for(0, a.batch, 1, [&](int64_t b0, int64_t b1) {
      BackwardTile tile{a, lse, D.data(), grad_out};
      TransposedKeys keys;
      for (int64_t b = b0; b < b1; ++b) {
        keys.pack(a, b, true);
        zero(gq ? gq + b * a.Lq * a.E : nullptr, a.Lq * a.E);
        zero(gk ? gk + b * a.Lk * a.E : nullptr, a.Lk * a.E);
        zero(gv ? gv + b * a.Lk * a.Ev : nullptr, a.Lk * a.Ev);
        for (int64_t j0 = 0; j0 < a.Lk; j0 += kKeyTile) {
          const int64_t cols = std::min(kKeyTile, a.Lk - j0);
          for (int64_t i0 = first_query_tile(a, j0); i0 < a.Lq; i0 += kQueryTile) {
            const int64_t rows = std::min(kQueryTile, a.Lq - i0);
            if (key_end(a, i0 + rows) <= j0) continue;
            const int64_t c = std::min(cols, key_end(a, i0 + rows) - j0);
            tile.probabilities_and_score_grads(keys, b, i0, rows, j0, c,
                                               gv ? gv + (b * a.Lk + j0) * a.Ev : nullptr);
            if (gk) tile.add_key_grads(b, i0, rows, c, gk + (b * a.Lk + j0) * a.E);
            if (gq) tile.add_query_grads(b, rows, j0, c, gq + (b * a.Lq + i0) * a.E);
          }
        }
      }
    });
    return;
  }

  // Few entries: key gradients per (entry, key tile), then query gradients per (entry, query
  // tile), so that every thread has work and no two add into the same element.
  if (gk || gv) {
    parallel_for(0, a.batch * k_tiles, 1, [&](int64_t t0, int64_t t1) {
      BackwardTile tile{a, lse, D.data(), grad_out};
      TransposedKeys keys;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / k_tiles, j0 = (t % k_tiles) * kKeyTile;
        const int64_t cols = std::min(kKeyTile, a.Lk - j0);
        keys.pack(a, b, true);
        float* gk_tile = gk ? gk + (b * a.Lk + j0) * a.E : nullptr;
        float* gv_tile = gv ? gv + (b * a.Lk + j0) * a.Ev : nullptr;
        zero(gk_tile, cols * a.E);
        zero(gv_tile, cols * a.Ev);
        for (int64_t i0 = first_query_tile(a, j0); i0 < a.Lq; i0 += kQueryTile) {
          const int64_t rows = std::min(kQueryTile, a.Lq - i0);
          if (key_end(a, i0 + rows) <= j0) continue;
          const int64_t c = std::min(cols, key_end(a, i0 + rows) - j0);
          tile.probabilities_and_score_grads(keys, b, i0, rows, j0, c, gv_tile);
          if (gk_tile) tile.add_key_grads(b, i0, rows, c, gk_tile);
        }
      }
    });
  }
  if (!gq) return;
  parallel_for(0, a.batch * q_tiles, 1, [&](int64_t t0, int64_t t1) {
    BackwardTile tile{a, lse, D.data(), grad_out};
    TransposedKeys keys;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / q_tiles, i0 = (t % q_tiles) * kQueryTile;
      const int64_t rows = std::min(kQueryTile, a.Lq - i0);
      keys.pack(a, b, true);
      float* gq_tile = gq + (b * a.Lq + i0) * a.E;
      zero(gq_tile, rows * a.E);
      const int64_t j_end = key_end(a, i0 + rows);
      for (int64_t j0 = 0; j0 < j_end; j0 += kKeyTile) {
        const int64_t c = std::min(kKeyTile, j_end - j0);
        tile.probabilities_and_score_grads(keys, b, i0, rows, j0, c, nullptr);
        tile.add_query_grads(b, rows, j0, c, gq_tile);
      }
    }
  });
}

}  // namespace shallow::cpu::attention_detail

#else  // no AVX-512: attention.cpp runs its generic kernels

namespace shallow::cpu::attention_detail {

bool have_f32_kernels() { return false; }
void forward_f32(const AttentionArgs<float>&, float*, float*) {}
void backward_f32(const AttentionArgs<float>&, const float*, const float*, const float*, float*,
                  float*, float*) {}
void exp_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

}  // namespace shallow::cpu::attention_detail

#endif
