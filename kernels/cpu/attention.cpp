#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/attention_f32.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {

// Query rows and keys per tile: a 64 x 128 score tile (32 KB in f32) stays in L1/L2 next to
// the rows of q, k and v it is made from.
constexpr int64_t kQueryTile = 64;
constexpr int64_t kKeyTile = 128;

template <class T>
constexpr T kInf = std::numeric_limits<T>::infinity();

int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

// One past the last key that any of the rows [.., i1) may attend.
template <class T>
int64_t key_end(const AttentionArgs<T>& a, int64_t i1) {
  return a.causal ? std::min(a.Lk, i1) : a.Lk;
}

// S[r, c] = scale * q_{i0+r} . k_{j0+c} + mask, and -inf where masked out; S is
// (i1 - i0) x (j1 - j0), row-major.
template <class T>
void score_tile(const AttentionArgs<T>& a, int64_t b, int64_t i0, int64_t i1, int64_t j0,
                int64_t j1, T* S) {
  const int64_t rows = i1 - i0, cols = j1 - j0;
  gemm<T>(false, true, rows, cols, a.E, a.scale, a.q + a.q_offset[b] + i0 * a.q_ld, a.q_ld,
          a.k + a.k_offset[b] + j0 * a.k_ld, a.k_ld, T(0), S, cols);
  const AttentionMask<T>& m = a.mask;
  for (int64_t r = 0; r < rows; ++r) {
    T* row = S + r * cols;
    const int64_t i = i0 + r;
    if (m.additive || m.keep) {
      const int64_t at = m.offset[b] + i * m.row_stride + j0 * m.col_stride;
      if (m.additive)
        for (int64_t c = 0; c < cols; ++c) row[c] += m.additive[at + c * m.col_stride];
      else
        for (int64_t c = 0; c < cols; ++c)
          if (!m.keep[at + c * m.col_stride]) row[c] = -kInf<T>;
    }
    if (a.causal)  // keys j > i are in the future of row i
      for (int64_t c = std::max<int64_t>(0, i + 1 - j0); c < cols; ++c) row[c] = -kInf<T>;
  }
}

// P = exp(S - lse) for the tile: the softmax probabilities, recomputed. A row with lse = +inf
// (it attends nothing) gives zeros.
template <class T>
void prob_tile(const AttentionArgs<T>& a, int64_t b, int64_t i0, int64_t i1, int64_t j0,
               int64_t j1, const T* lse, T* P) {
  score_tile(a, b, i0, i1, j0, j1, P);
  const int64_t cols = j1 - j0;
  for (int64_t r = 0; r < i1 - i0; ++r) {
    const T l = lse[b * a.Lq + i0 + r];
    T* row = P + r * cols;
    if (l == kInf<T>) std::fill(row, row + cols, T(0));
    else for (int64_t c = 0; c < cols; ++c) row[c] = std::exp(row[c] - l);
  }
}

// dS = P * (dP - D): the gradient of the scaled scores, with dP = dO v^T given in `dP`
// (overwritten) and D_i = dO_i . O_i.
template <class T>
void score_grad_tile(int64_t rows, int64_t cols, const T* P, const T* D, T* dP) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dP[r * cols + c] = P[r * cols + c] * (dP[r * cols + c] - D[r]);
}

// Forward of query rows [i0, i1) of batch entry b.
template <class T>
void forward_tile(const AttentionArgs<T>& a, int64_t b, int64_t i0, int64_t i1, T* out, T* lse,
                  std::vector<T>& S, std::vector<T>& row_max, std::vector<T>& row_sum) {
  const int64_t rows = i1 - i0;
  T* acc = out + (b * a.Lq + i0) * a.Ev;  // accumulate straight into the output rows
  std::fill(acc, acc + rows * a.Ev, T(0));
  std::fill(row_max.begin(), row_max.begin() + rows, -kInf<T>);
  std::fill(row_sum.begin(), row_sum.begin() + rows, T(0));
  const int64_t j_end = key_end(a, i1);
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeyTile) {
    const int64_t j1 = std::min(j0 + kKeyTile, j_end), cols = j1 - j0;
    score_tile(a, b, i0, i1, j0, j1, S.data());
    for (int64_t r = 0; r < rows; ++r) {
      T* row = S.data() + r * cols;
      const T new_max = std::max(row_max[size_t(r)], *std::max_element(row, row + cols));
      if (new_max == -kInf<T>) {  // nothing attended so far: contribute nothing
        std::fill(row, row + cols, T(0));
        continue;
      }
      // Rescale what was summed under the old maximum to the new one.
      const T rescale = std::exp(row_max[size_t(r)] - new_max);
      T sum = 0;
      for (int64_t c = 0; c < cols; ++c) {
        row[c] = std::exp(row[c] - new_max);
        sum += row[c];
      }
      row_sum[size_t(r)] = row_sum[size_t(r)] * rescale + sum;
      row_max[size_t(r)] = new_max;
      if (rescale != T(1)) {
        T* acc_row = acc + r * a.Ev;
        for (int64_t e = 0; e < a.Ev; ++e) acc_row[e] *= rescale;
      }
    }
    gemm<T>(false, false, rows, a.Ev, cols, T(1), S.data(), cols,
            a.v + a.v_offset[b] + j0 * a.v_ld, a.v_ld, T(1), acc, a.Ev);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T sum = row_sum[size_t(r)];
    T* acc_row = acc + r * a.Ev;
    if (sum > T(0)) {
      for (int64_t e = 0; e < a.Ev; ++e) acc_row[e] /= sum;
      lse[b * a.Lq + i0 + r] = row_max[size_t(r)] + std::log(sum);
    } else {  // every key masked out: zeros, as PyTorch
      std::fill(acc_row, acc_row + a.Ev, T(0));
      lse[b * a.Lq + i0 + r] = kInf<T>;
    }
  }
}

}  // namespace

template <class T>
void attention_forward(const AttentionArgs<T>& a, T* out, T* lse) {
  if constexpr (std::is_same_v<T, float>) {
    if (attention_detail::have_f32_kernels()) return attention_detail::forward_f32(a, out, lse);
  }
  const int64_t q_tiles = tiles(a.Lq, kQueryTile);
  parallel_for(0, a.batch * q_tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<T> S(size_t(kQueryTile * kKeyTile)), row_max(kQueryTile), row_sum(kQueryTile);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / q_tiles, i0 = (t % q_tiles) * kQueryTile;
      forward_tile(a, b, i0, std::min(i0 + kQueryTile, a.Lq), out, lse, S, row_max, row_sum);
    }
  });
}

template <class T>
void attention_backward(const AttentionArgs<T>& a, const T* out, const T* lse, const T* grad_out,
                        T* gq, T* gk, T* gv) {
  if constexpr (std::is_same_v<T, float>) {
    if (attention_detail::have_f32_kernels())
      return attention_detail::backward_f32(a, out, lse, grad_out, gq, gk, gv);
  }
  // D_i = dO_i . O_i, the row term of the softmax gradient.
  std::vector<T> D(size_t(a.batch * a.Lq));
  parallel_for(0, a.batch * a.Lq, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.Ev)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   T d = 0;
                   for (int64_t e = 0; e < a.Ev; ++e) d += grad_out[r * a.Ev + e] * out[r * a.Ev + e];
                   D[size_t(r)] = d;
                 }
               });

  // Pass 1, per key tile: gv_j = sum_i P_ij^T dO_i, gk_j = scale * sum_i dS_ij^T q_i.
  const int64_t k_tiles = tiles(a.Lk, kKeyTile);
  if (gk || gv) {
    parallel_for(0, a.batch * k_tiles, 1, [&](int64_t t0, int64_t t1) {
      std::vector<T> P(size_t(kQueryTile * kKeyTile)), dS(size_t(kQueryTile * kKeyTile));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / k_tiles, j0 = (t % k_tiles) * kKeyTile;
        const int64_t j1 = std::min(j0 + kKeyTile, a.Lk), cols = j1 - j0;
        T* gk_tile = gk ? gk + (b * a.Lk + j0) * a.E : nullptr;
        T* gv_tile = gv ? gv + (b * a.Lk + j0) * a.Ev : nullptr;
        if (gk_tile) std::fill(gk_tile, gk_tile + cols * a.E, T(0));
        if (gv_tile) std::fill(gv_tile, gv_tile + cols * a.Ev, T(0));
        const T* v_tile = a.v + a.v_offset[b] + j0 * a.v_ld;
        // Under the causal mask, rows before j0 attend none of these keys.
        for (int64_t i0 = a.causal ? std::min(j0, a.Lq) : 0; i0 < a.Lq; i0 += kQueryTile) {
          const int64_t i1 = std::min(i0 + kQueryTile, a.Lq), rows = i1 - i0;
          const T* dO = grad_out + (b * a.Lq + i0) * a.Ev;
          prob_tile(a, b, i0, i1, j0, j1, lse, P.data());
          if (gv_tile)
            gemm<T>(true, false, cols, a.Ev, rows, T(1), P.data(), cols, dO, a.Ev, T(1), gv_tile, a.Ev);
          if (!gk_tile) continue;
          gemm<T>(false, true, rows, cols, a.Ev, T(1), dO, a.Ev, v_tile, a.v_ld, T(0), dS.data(), cols);
          score_grad_tile(rows, cols, P.data(), D.data() + b * a.Lq + i0, dS.data());
          gemm<T>(true, false, cols, a.E, rows, a.scale, dS.data(), cols,
                  a.q + a.q_offset[b] + i0 * a.q_ld, a.q_ld, T(1), gk_tile, a.E);
        }
      }
    });
  }

  // Pass 2, per query tile: gq_i = scale * sum_j dS_ij k_j.
  if (!gq) return;
  const int64_t q_tiles = tiles(a.Lq, kQueryTile);
  parallel_for(0, a.batch * q_tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<T> P(size_t(kQueryTile * kKeyTile)), dS(size_t(kQueryTile * kKeyTile));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / q_tiles, i0 = (t % q_tiles) * kQueryTile;
      const int64_t i1 = std::min(i0 + kQueryTile, a.Lq), rows = i1 - i0;
      T* gq_tile = gq + (b * a.Lq + i0) * a.E;
      std::fill(gq_tile, gq_tile + rows * a.E, T(0));
      const T* dO = grad_out + (b * a.Lq + i0) * a.Ev;
      const int64_t j_end = key_end(a, i1);
      for (int64_t j0 = 0; j0 < j_end; j0 += kKeyTile) {
        const int64_t j1 = std::min(j0 + kKeyTile, j_end), cols = j1 - j0;
        prob_tile(a, b, i0, i1, j0, j1, lse, P.data());
        gemm<T>(false, true, rows, cols, a.Ev, T(1), dO, a.Ev, a.v + a.v_offset[b] + j0 * a.v_ld,
                a.v_ld, T(0), dS.data(), cols);
        score_grad_tile(rows, cols, P.data(), D.data() + b * a.Lq + i0, dS.data());
        gemm<T>(false, false, rows, a.E, cols, a.scale, dS.data(), cols,
                a.k + a.k_offset[b] + j0 * a.k_ld, a.k_ld, T(1), gq_tile, a.E);
      }
    }
  });
}

#define SH_INSTANTIATE(T)                                                                    \
  template void attention_forward<T>(const AttentionArgs<T>&, T*, T*);                      \
  template void attention_backward<T>(const AttentionArgs<T>&, const T*, const T*, const T*, \
                                      T*, T*, T*);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cpu
