// The gemm driver, in the manner of BLIS: for each kc x nc block of op(B) (packed once and
// shared by the threads), each thread packs mc x kc blocks of op(A) and sweeps the register
// tiles of the block with the micro-kernel chosen for this CPU (gemm_dispatch.cpp). The
// epilogue (bias, activation) is applied to each tile right after its last k block is written,
// while the tile is still in L1.
#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <barrier>
#include <cstddef>

#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/scratch.h"

namespace shallow::cpu {
namespace {

using gemm_detail::ceil_div;
using gemm_detail::choose_grid;
using gemm_detail::Grid;
using gemm_detail::MicroKernel;

template <class T>
const MicroKernel<T>& kernel_for() {
  return gemm_detail::active_kernel<T>();
}

// scratch_b holds the block of B that all threads share (on the calling thread); own_b, the
// panels a thread packs for itself alone.
thread_local Scratch scratch_a, scratch_b, own_b;

template <class T>
struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T beta;
  T* C;
  int64_t ldc;
  const GemmEpilogue<T>* ep;
};

// Writes an mr x nr result held in `tile` into the m x n corner of C that exists.
template <class T>
void merge_edge(const T* tile, int64_t nr, int64_t m, int64_t n, T alpha, T beta, T* c,
                int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      T& dst = c[i * ldc + j];
      dst = beta == T(0) ? alpha * tile[i * nr + j] : alpha * tile[i * nr + j] + beta * dst;
    }
}

// Where op(B)'s columns [j0, j0 + nr) of k block [k0, k0 + kc) lie in B: nr rows of kc values
// (B^T stored), or kc rows of nr values.
template <class T>
PrefetchRegion panel_source(const Problem<T>& p, int64_t k0, int64_t kc, int64_t j0, int64_t nr) {
  const int64_t n = std::min(nr, p.N - j0);
  const T* first = p.trans_b ? p.B + j0 * p.ldb + k0 : p.B + k0 * p.ldb + j0;
  return strided_runs(first, p.trans_b ? n : kc, (p.trans_b ? kc : n) * int64_t(sizeof(T)),
                      p.ldb * int64_t(sizeof(T)));
}

// Thread t of `threads`: packs its share of each B block into `packed_b`, waits for the others,
// then computes its rows x columns of C; or, with one row group (grid.tm == 1, and always when
// it runs alone), packs its own panels as it goes and needs neither `packed_b` nor `sync`.
// `sync` is null when the thread runs alone.
template <class T>
void run_thread(const Problem<T>& p, const MicroKernel<T>& kern, int t, int threads, Grid grid,
                T* packed_b, std::barrier<>* sync) {
  const GemmBlocking& bl = kern.blocking;
  const int64_t mr = bl.mr, nr = bl.nr;
  const int64_t m_tiles = ceil_div(p.M, mr);
  const int row_group = t / grid.tn, col_group = t % grid.tn;
  const int64_t i_begin = std::min(p.M, m_tiles * row_group / grid.tm * mr);
  const int64_t i_end = std::min(p.M, m_tiles * (row_group + 1) / grid.tm * mr);
  // Where the threads split only the columns (tm == 1), each packs exactly the panels it
  // computes: it packs each one just before its first use, so that reading B (a weight from
  // memory, at batch 1) interleaves with the arithmetic instead of being a phase of its own,
  // and no thread waits for another. Without a barrier the threads may be in different k or
  // column blocks at once, so each packs into a buffer of its own.
  const bool own_panels = grid.tm == 1;
  const int64_t kc_max = std::min(bl.kc, p.K);
  // The packed block of A has an L2 budget of mc x kc values; with K at most half of kc, twice
  // the rows fit in it, and each packed panel of B then serves twice as many tiles (square 512
  // on 2 threads, best of 15 runs: 199 -> 206 GFLOP/s with kc 1024, mc 84). A thread with its
  // own panels takes all its rows at once where they fit in that doubled budget (a ViT-B/16
  // image's 197 rows at K 768): each panel then serves every row tile as soon as it is packed
  // and is dropped, so one panel's buffer, in L2, replaces a column block's worth kept in L3
  // for the next row blocks.
  int64_t mc_block = 2 * p.K <= bl.kc ? 2 * bl.mc : bl.mc;
  const int64_t my_rows = ceil_div(i_end - i_begin, mr) * mr;
  if (own_panels && my_rows * kc_max <= 2 * bl.mc * bl.kc) mc_block = std::max(mc_block, my_rows);
  const bool one_row_block = mc_block >= i_end - i_begin;
  T* packed_a = scratch_a.get<T>(size_t(ceil_div(mc_block, mr) * mr * kc_max));
  T edge[16 * 64];  // one register tile, for tiles that overhang C's edge
  const GemmEpilogue<T>& ep = *p.ep;

  const int64_t own_panel_size = kc_max * nr;
  const int64_t own_panels_kept =
      one_row_block ? 1 : ceil_div(ceil_div(std::min(bl.nc, p.N), nr), grid.tn);
  T* const own_panels_at =
      own_panels ? own_b.get<T>(size_t(own_panels_kept * own_panel_size)) : nullptr;
  for (int64_t jc = 0; jc < p.N; jc += bl.nc) {
    const int64_t nc = std::min(bl.nc, p.N - jc);
    const int64_t panels = ceil_div(nc, nr);
    for (int64_t pc = 0; pc < p.K; pc += bl.kc) {
      const int64_t kc = std::min(bl.kc, p.K - pc);
      const int64_t pb0 = panels * t / threads, pb1 = panels * (t + 1) / threads;
      if (!own_panels && pb1 > pb0)
        kern.pack_b(p.trans_b, p.B, p.ldb, pc, kc, jc + pb0 * nr, std::min(nc, pb1 * nr) - pb0 * nr,
                    nr, packed_b + pb0 * nr * kc);
      if (sync && !own_panels) sync->arrive_and_wait();

      const T beta = pc == 0 ? p.beta : T(1);
      const bool last = pc + kc == p.K;
      const int64_t jp0 = panels * col_group / grid.tn, jp1 = panels * (col_group + 1) / grid.tn;
      for (int64_t ic = i_begin; ic < i_end; ic += mc_block) {
        const int64_t mc = std::min(mc_block, i_end - ic);
        // C's last rows, where fewer than a full tile remain, take the short tile if it holds
        // them (197 rows of a ViT-B/16 image: 200 computed instead of 204).
        const int64_t full_rows = mc / mr * mr, rest = mc - full_rows;
        const bool short_rest = kern.short_tile && rest > 0 && rest <= kern.short_mr;
        kern.pack_a(p.trans_a, p.A, p.lda, ic, short_rest ? full_rows : mc, pc, kc, mr, packed_a);
        if (short_rest)
          kern.pack_a(p.trans_a, p.A, p.lda, ic + full_rows, rest, pc, kc, kern.short_mr,
                      packed_a + full_rows * kc);
        const bool packing = own_panels && ic == i_begin;
        for (int64_t jp = jp0; jp < jp1; ++jp) {
          const int64_t j0 = jc + jp * nr, n = std::min(nr, p.N - j0);
          T* const b = !own_panels     ? packed_b + jp * nr * kc
                       : one_row_block ? own_panels_at
                                       : own_panels_at + (jp - jp0) * own_panel_size;
          if (packing) kern.pack_b(p.trans_b, p.B, p.ldb, pc, kc, j0, n, nr, b);
          // While this panel's full tiles run, the next panel's source is fetched into cache,
          // a slice per tile, so that packing it does not wait on memory (a weight at batch 1:
          // ViT-B/16's packing 10.5 -> 7.3 % of the forward's samples).
          const int64_t full_tiles = n == nr ? mc / mr : 0;
          const PrefetchRegion next = packing && jp + 1 < jp1 && kern.tile_prefetching
                                          ? panel_source(p, pc, kc, j0 + nr, nr)
                                          : PrefetchRegion{};
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t m = std::min(mr, mc - ir);
            const bool short_tile = short_rest && ir == full_rows;
            const auto tile = short_tile ? kern.short_tile : kern.tile;
            const T* a = packed_a + ir * kc;
            T* c = p.C + (ic + ir) * p.ldc + j0;
            if (next.runs > 0 && ir / mr < full_tiles) {
              kern.tile_prefetching(kc, a, b, c, p.ldc, p.alpha, beta,
                                    prefetch_share(next, ir / mr, full_tiles));
            } else if (m == (short_tile ? kern.short_mr : mr) && n == nr) {
              tile(kc, a, b, c, p.ldc, p.alpha, beta);
            } else {
              tile(kc, a, b, edge, nr, T(1), T(0));
              merge_edge(edge, nr, m, n, p.alpha, beta, c, p.ldc);
            }
            if (last && ep.active())
              kern.epilogue(c, p.ldc, m, n,
                            ep.bias ? ep.bias + (ep.bias_per_row ? ic + ir : j0) : nullptr,
                            ep.bias_per_row, ep.act);
          }
        }
      }
      if (sync && !own_panels) sync->arrive_and_wait();  // the B block is about to be overwritten
    }
  }
}

// Below this many flops a gemm stays on one thread (about 20 us of one core's work).
constexpr double kMinFlopsToSplit = 2e6;

// A is packed once (it is small) as the vector operand; the threads split C's columns, and
// each applies the epilogue to its own.
template <class T>
void run_unpacked(const Problem<T>& p, const MicroKernel<T>& kern, int threads) {
  const int64_t lanes = kern.nt_unpacked_lanes;
  T* a_packed = scratch_a.get<T>(size_t(ceil_div(p.M, lanes) * lanes * p.K));
  kern.pack_b(true, p.A, p.lda, 0, p.K, 0, p.M, lanes, a_packed);
  constexpr int64_t kColumnGrain = 48;  // whole tiles of C^T (12 columns) and cache lines
  const int64_t pieces = ceil_div(p.N, kColumnGrain);
  auto part = [&](int64_t q0, int64_t q1) {
    const int64_t j0 = q0 * kColumnGrain, j1 = std::min(p.N, q1 * kColumnGrain);
    kern.nt_unpacked(p.M, j0, j1, p.K, p.alpha, a_packed, p.B, p.ldb, p.beta, p.C, p.ldc);
    const GemmEpilogue<T>& ep = *p.ep;
    if (ep.active())
      kern.epilogue(p.C + j0, p.ldc, p.M, j1 - j0,
                    ep.bias ? ep.bias + (ep.bias_per_row ? 0 : j0) : nullptr, ep.bias_per_row,
                    ep.act);
  };
  if (threads == 1) return part(0, pieces);
  parallel_for(0, pieces, 1, part);
}

template <class T>
void run(const Problem<T>& p, bool allow_threads) {
  const MicroKernel<T>& kern = kernel_for<T>();
  const GemmBlocking& bl = kern.blocking;
  const double flops = 2.0 * double(p.M) * double(p.N) * double(p.K);
  const int threads = allow_threads && flops >= kMinFlopsToSplit ? num_threads() : 1;
  if (kern.nt_unpacked && !p.trans_a && p.trans_b && p.M <= gemm_unpacked_max_rows())
    return run_unpacked(p, kern, threads);
  if (threads == 1) {
    run_thread<T>(p, kern, 0, 1, Grid{}, nullptr, nullptr);  // one column group: own panels
    return;
  }
  const Grid grid =
      choose_grid(threads, ceil_div(p.M, bl.mr), ceil_div(std::min(bl.nc, p.N), bl.nr));
  // The shared block of B, only where row groups read the same panels (with one row group each
  // thread packs its own).
  const int64_t nc_max = ceil_div(std::min(bl.nc, p.N), bl.nr) * bl.nr;
  T* packed_b = grid.tm > 1 ? scratch_b.get<T>(size_t(std::min(bl.kc, p.K) * nc_max)) : nullptr;
  std::barrier<> sync(threads);
  parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
    if (t1 - t0 == 1)
      run_thread(p, kern, int(t0), threads, grid, packed_b, &sync);
    else
      run_thread(p, kern, 0, 1, Grid{}, packed_b, nullptr);  // nested: no pool, one thread
  });
}

// C = act(beta * C + bias): the whole gemm when op(A) op(B) contributes nothing (K == 0 or
// alpha == 0), in which case A and B are not read.
template <class T>
void scale_only(const Problem<T>& p) {
  const MicroKernel<T>& kern = kernel_for<T>();
  parallel_for(0, p.M, std::max<int64_t>(1, 16384 / p.N), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T* c = p.C + i * p.ldc;
      if (p.beta == T(0))
        std::fill(c, c + p.N, T(0));
      else if (p.beta != T(1))
        for (int64_t j = 0; j < p.N; ++j) c[j] *= p.beta;
    }
    if (p.ep->active())
      kern.epilogue(p.C + i0 * p.ldc, p.ldc, i1 - i0, p.N,
                    p.ep->bias ? p.ep->bias + (p.ep->bias_per_row ? i0 : 0) : nullptr,
                    p.ep->bias_per_row, p.ep->act);
  });
}

template <class T>
void gemm_one(const Problem<T>& p, bool allow_threads) {
  if (p.M <= 0 || p.N <= 0) return;
  if (p.K <= 0 || p.alpha == T(0)) return scale_only(p);
  run(p, allow_threads);
}

}  // namespace

template <class T>
void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
             int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
             const GemmEpilogue<T>& epilogue) {
  gemm_one(Problem<T>{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &epilogue},
           true);
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, GemmEpilogue<T>{});
}

template <class T>
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  T alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                  int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const GemmEpilogue<T> none;
  auto one = [&](int64_t b, bool allow_threads) {
    gemm_one(Problem<T>{trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b,
                        ldb, beta, C + b * stride_c, ldc, &none},
             allow_threads);
  };
  // Whole matrices per thread when they divide evenly or are many; otherwise each gemm is
  // split among the threads, so that 3 matrices on 2 threads do not take 2 rounds.
  const int threads = num_threads();
  if (threads > 1 && (batch % threads == 0 || batch >= 4 * threads)) {
    parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) one(b, false);
    });
  } else {
    for (int64_t b = 0; b < batch; ++b) one(b, true);
  }
}

#define SH_INSTANTIATE(T)                                                                         \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*,    \
                        int64_t, T, T*, int64_t);                                                 \
  template void gemm_ex<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                           int64_t, T, T*, int64_t, const GemmEpilogue<T>&);                      \
  template void gemm_batched<T>(int64_t, bool, bool, int64_t, int64_t, int64_t, T, const T*,      \
                                int64_t, int64_t, const T*, int64_t, int64_t, T, T*, int64_t,     \
                                int64_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cpu
