#include "kernels/cpu/gemm_bf16.h"

#include <algorithm>
#include <atomic>
#include <type_traits>
#include <stdexcept>

#include "kernels/cpu/gemm_bf16_micro.h"
#include "kernels/cpu/gemm_epilogue.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/prefetch_region.h"

namespace shallow::cpu {
namespace {

using namespace gemm_bf16_detail;

constexpr int64_t MR = kGemmBf16MR;
constexpr int64_t NR = kGemmBf16NR;
// Cache blocks. The micro-kernel streams a KC-deep panel of B (64 KB) from L2 past a broadcast
// panel of A (24 KB): 128 bytes of B per 24 vdpbf16ps is far below L2's bandwidth, and a deep
// KC sums more of K in registers (a shallower KC of 256, for L1, measured ~10 % slower). The
// MC x KC block of A (288 KB) stays in the 1 MB L2, beside (only where K is deeper than KC) the
// MC x NC f32 sums of the earlier k blocks (288 KB).
constexpr int64_t KC = 1024;     // even, so that every block starts on a k-pair
constexpr int64_t MC = 12 * MR;  // rows of A packed at a time
constexpr int64_t NC = 16 * NR;  // columns of C per block of sums

static_assert(KC % 2 == 0 && MC % MR == 0 && NC % NR == 0);
static_assert(MR <= 16 && NR % 16 == 0, "the packing turns 16 rows around at a time");

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

GemmBf16Path best_path() {
  return avx512_compiled() && cpu_has_avx512_bf16() ? GemmBf16Path::avx512_bf16
                                                    : GemmBf16Path::scalar;
}

std::atomic<GemmBf16Path>& chosen_path() {
  static std::atomic<GemmBf16Path> path{best_path()};
  return path;
}

inline uint32_t pair_word(bf16 lo, bf16 hi) { return uint32_t(lo.bits) | (uint32_t(hi.bits) << 16); }

// The words p of `lanes` rows in place (`rows` pointers, 16 of them, the spares repeating one),
// as dst[p * ldd + i] for p < K / 2, 16 pairs at a time on AVX-512; returns how many pairs it
// wrote (a multiple of 16: the caller writes the rest). The rows' pairs are whole there: op(X)
// is read along its stored rows.
int64_t transpose_whole_pairs(const uint16_t* const* rows, int64_t lanes, int64_t K, uint32_t* dst,
                              int64_t ldd, bool use_avx512) {
  if (!use_avx512) return 0;
  const int64_t blocks = K / 2 / 16;
  for (int64_t b = 0; b < blocks; ++b) transpose_pairs_avx512(rows, 16 * b, lanes, dst + 16 * b * ldd, ldd);
  return 16 * blocks;
}

// The width of the last panel of `rows` rows of A: the short tile's where the rows left over
// by full panels fit in it (197 rows: 200 computed instead of 204; 50 rows: 56 instead of 60).
int64_t last_panel_width(int64_t rows, bool use_avx512) {
  const int64_t rest = rows % MR;
  return use_avx512 && rest > 0 && rest <= kShortTileRows ? kShortTileRows : MR;
}

// Rows [i0, i0 + rows) of op(A), every k, as ceil(rows / MR) panels; panel q holds, for each
// k-pair p, the words of its rows (zero past M and K): MR of them, or last_width for the last
// panel when it is partial. Panels start `pairs * MR` words apart.
void pack_a(bool trans_a, const bf16* A, int64_t lda, int64_t i0, int64_t rows, int64_t K,
            int64_t last_width, uint32_t* out, bool use_avx512) {
  const int64_t pairs = (K + 1) / 2;
  const bf16 zero;
  for (int64_t q = 0; q * MR < rows; ++q) {
    uint32_t* panel = out + q * pairs * MR;
    const bool full = (q + 1) * MR <= rows;
    const int64_t w = full ? MR : last_width;
    int64_t done = 0;  // pairs of every row of the panel already written
    if (!trans_a && full) {
      const uint16_t* in_place[16];
      for (int64_t r = 0; r < 16; ++r) in_place[r] = &A[(i0 + q * MR + (r < MR ? r : 0)) * lda].bits;
      done = transpose_whole_pairs(in_place, MR, K, panel, MR, use_avx512);
    }
    for (int64_t r = 0; r < w; ++r) {
      const int64_t local = q * MR + r;
      if (local >= rows) {
        for (int64_t p = 0; p < pairs; ++p) panel[p * w + r] = 0;
        continue;
      }
      const int64_t i = i0 + local;
      if (!trans_a) {
        const bf16* row = A + i * lda;
        for (int64_t p = done; p < K / 2; ++p) panel[p * w + r] = pair_word(row[2 * p], row[2 * p + 1]);
        if (K % 2) panel[(pairs - 1) * w + r] = pair_word(row[K - 1], zero);
      } else {
        for (int64_t p = 0; p < K / 2; ++p)
          panel[p * w + r] = pair_word(A[2 * p * lda + i], A[(2 * p + 1) * lda + i]);
        if (K % 2) panel[(pairs - 1) * w + r] = pair_word(A[(K - 1) * lda + i], zero);
      }
    }
  }
}

// Asks for the rows of C a tile is about to be stored to, before its k loop: C is written once,
// often out in L3 or memory, and the stores would otherwise wait on each line.
template <class TC>
void prefetch_tile_of_c(TC* c, int64_t ldc, int64_t rows, int64_t cols) {
  const int64_t bytes = cols * int64_t(sizeof(TC));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t at = 0; at < bytes; at += 64)
      __builtin_prefetch(reinterpret_cast<char*>(c + r * ldc) + at, 1, 3);
}

// One micro tile of row panel q (of row_panels, the last `last_width` wide) over pairs
// [p0, p0 + pc): the 12-row kernel, or the short one for a narrow last panel.
void micro_tile(bool use_avx512, int64_t q, int64_t row_panels, int64_t last_width,
                int64_t pairs, int64_t p0, int64_t pc, const uint32_t* a_panels, const uint32_t* b,
                float* t, int64_t ldt, bool accumulate, const PrefetchRegion& region) {
  const bool narrow = q == row_panels - 1 && last_width != MR;
  const uint32_t* a = a_panels + q * pairs * MR + p0 * (narrow ? last_width : MR);
  if (!use_avx512)
    micro_scalar(pc, a, b, t, ldt, accumulate);
  else if (narrow)
    micro_avx512_short(pc, a, b, t, ldt, accumulate, region);
  else if (region.runs > 0)
    micro_avx512_prefetching(pc, a, b, t, ldt, accumulate, region);
  else
    micro_avx512(pc, a, b, t, ldt, accumulate);
}

template <class TC>
inline TC from_f32(float v) {
  if constexpr (std::is_same_v<TC, float>) return v;
  else return bf16(v);
}

// C[rows, cols] = act(tile (+ bias)), where the tile is the f32 sum of the micro-kernels. With
// an activation the tile is finished in place first (bias included), then rounded.
template <class TC>
void store_tile(float* tile, int64_t ldt, int64_t rows, int64_t cols, const float* bias,
                GemmActivation act, TC* C, int64_t ldc) {
  if (act != GemmActivation::none) {
    gemm_detail::apply_epilogue(tile, ldt, rows, cols, bias, false, act);
    bias = nullptr;
  }
  for (int64_t i = 0; i < rows; ++i) {
    const float* t = tile + i * ldt;
    TC* c = C + i * ldc;
    if (bias) for (int64_t j = 0; j < cols; ++j) c[j] = from_f32<TC>(t[j] + bias[j]);
    else for (int64_t j = 0; j < cols; ++j) c[j] = from_f32<TC>(t[j]);
  }
}

// Per-thread buffers, kept across calls (grown, never shrunk, so that a model's products
// neither allocate nor touch fresh pages): the packed rows of A (every k), a packed panel of B
// and, where K takes more than one block, the f32 sums of the earlier blocks.
struct Scratch {
  std::vector<uint32_t> a, b;  // b: one panel of B, where the thread packs its own
  std::vector<float> tile;
};

Scratch& thread_scratch() {
  thread_local Scratch scratch;
  return scratch;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Below ~2 MFLOP (about 10 us of one core) a product stays on the calling thread.
int threads_for(int64_t M, int64_t N, int64_t K) {
  return 2.0 * double(M) * double(N) * double(K) < 2e6 ? 1 : num_threads();
}

// One thread's part of C: rows [i0, i1) and panels [j0, j1) of B.
struct Share {
  int64_t i0, i1, j0, j1;
};

// The threads form a grid of tm row groups by tn column groups; the grid whose busiest thread
// has the fewest micro tiles wins, and on a tie more row groups (which share the packed B and do
// not pack the same rows of A twice). Row groups hold whole MR-row tiles.
Share share_of(int t, int threads, int64_t M, int64_t panels) {
  const int64_t m_tiles = ceil_div(M, MR);
  int tm = threads;
  int64_t best = -1;
  for (int g = threads; g >= 1; --g) {
    if (threads % g) continue;
    const int64_t cost = ceil_div(m_tiles, g) * ceil_div(panels, threads / g);
    if (best < 0 || cost < best) best = cost, tm = g;
  }
  const int tn = threads / tm, row_group = t / tn, col_group = t % tn;
  return {std::min(M, m_tiles * row_group / tm * MR), std::min(M, m_tiles * (row_group + 1) / tm * MR),
          panels * col_group / tn, panels * (col_group + 1) / tn};
}

// Computes one share of C. Each micro tile's last block of K lands in a small buffer (or, where
// K took several blocks, in the thread's tile of earlier sums) and goes straight to C through
// the epilogue, while it is still in L1: no pass over a tile of the whole block afterwards.
template <class TC>
void run_share(const Share& sh, bool trans_a, const bf16* A, int64_t lda, const PackedBf16B& B,
               const float* bias, GemmActivation act, TC* C, int64_t ldc, bool use_avx512) {
  const int64_t K = B.K(), N = B.N(), pairs = B.pairs();
  Scratch& s = thread_scratch();
  float sums[MR * NR];
  for (int64_t ic = sh.i0; ic < sh.i1; ic += MC) {
    const int64_t rows = std::min(MC, sh.i1 - ic), row_panels = ceil_div(rows, MR);
    const int64_t last_width = last_panel_width(rows, use_avx512);
    s.a.resize(size_t(row_panels * pairs * MR));
    pack_a(trans_a, A, lda, ic, rows, K, last_width, s.a.data(), use_avx512);
    for (int64_t jc = sh.j0; jc < sh.j1; jc += NC / NR) {
      const int64_t panels = std::min(NC / NR, sh.j1 - jc), ldt = panels * NR;
      if (pairs > KC / 2) s.tile.resize(size_t(row_panels * MR * ldt));
      for (int64_t p0 = 0; p0 < pairs; p0 += KC / 2) {
        const int64_t pc = std::min(KC / 2, pairs - p0);
        const bool first = p0 == 0, last = p0 + pc == pairs;
        for (int64_t jp = 0; jp < panels; ++jp) {
          const uint32_t* b = B.panel(jc + jp) + p0 * NR;
          const int64_t col0 = (jc + jp) * NR, cols = std::min(NR, N - col0);
          for (int64_t q = 0; q < row_panels; ++q) {
            float* t = first && last ? sums : s.tile.data() + q * MR * ldt + jp * NR;
            const int64_t ldts = first && last ? NR : ldt;
            if (last)
              prefetch_tile_of_c(C + (ic + q * MR) * ldc + col0, ldc, std::min(MR, rows - q * MR), cols);
            micro_tile(use_avx512, q, row_panels, last_width, pairs, p0, pc, s.a.data(), b, t,
                       ldts, !first, PrefetchRegion{});
            if (last)
              store_tile(t, ldts, std::min(MR, rows - q * MR), cols, bias ? bias + col0 : nullptr,
                         act, C + (ic + q * MR) * ldc + col0, ldc);
          }
        }
      }
    }
  }
}

// Panel q of op(B) (columns q * NR ..), every k-pair, zero past K and N: ceil(K / 2) rows of
// NR words at `panel`. Each loop reads B along its rows: a transposed B (a linear layer's
// [N, K] weight) gives one panel column per stored row, a plain one two stored rows per k-pair.
void pack_b_panel(bool trans_b, int64_t K, int64_t N, const bf16* B, int64_t ldb, int64_t q,
                  uint32_t* panel, bool use_avx512) {
  const int64_t pairs = (K + 1) / 2, j0 = q * NR, cols = std::min(NR, N - j0);
  const bf16 zero;
  if (cols < NR) std::fill(panel, panel + pairs * NR, 0u);  // the columns past N
  if (trans_b) {
    int64_t done = 0;  // pairs of every column already written
    if (cols == NR) {
      const uint16_t* in_place[NR];
      for (int64_t c = 0; c < NR; ++c) in_place[c] = &B[(j0 + c) * ldb].bits;
      for (int64_t half = 0; half < NR; half += 16)
        done = transpose_whole_pairs(in_place + half, 16, K, panel + half, NR, use_avx512);
    }
    // 16 pairs at a time, so that the panel rows being filled (2 KB) stay in L1.
    for (int64_t p0 = done; p0 < K / 2; p0 += 16) {
      const int64_t p1 = std::min(p0 + 16, K / 2);
      for (int64_t c = 0; c < cols; ++c) {
        const bf16* row = B + (j0 + c) * ldb;
        for (int64_t p = p0; p < p1; ++p) panel[p * NR + c] = pair_word(row[2 * p], row[2 * p + 1]);
      }
    }
    if (K % 2)
      for (int64_t c = 0; c < cols; ++c)
        panel[(pairs - 1) * NR + c] = pair_word(B[(j0 + c) * ldb + K - 1], zero);
  } else {
    for (int64_t p = 0; p < K / 2; ++p) {
      const bf16* even = B + 2 * p * ldb + j0;
      const bf16* odd = even + ldb;
      for (int64_t c = 0; c < cols; ++c) panel[p * NR + c] = pair_word(even[c], odd[c]);
    }
    if (K % 2) {
      const bf16* last = B + (K - 1) * ldb + j0;
      for (int64_t c = 0; c < cols; ++c) panel[(pairs - 1) * NR + c] = pair_word(last[c], zero);
    }
  }
}

// Where panel q of op(B) lies in B: NR stored rows of K values (B^T stored), or K rows of NR.
PrefetchRegion panel_source(bool trans_b, int64_t K, int64_t N, const bf16* B, int64_t ldb,
                            int64_t q) {
  const int64_t j0 = q * NR, cols = std::min(NR, N - j0);
  const bf16* first = trans_b ? B + j0 * ldb : B + j0;
  return strided_runs(first, trans_b ? cols : K, int64_t(sizeof(bf16)) * (trans_b ? K : cols),
                      ldb * int64_t(sizeof(bf16)));
}

// A share of C where B is packed by the thread that uses it (the threads split the columns, or
// one thread does all): all its rows of A are packed once, then each panel of B just before its
// tiles, into one buffer that stays in L2, while those tiles prefetch the next panel's source.
// Reading B (a weight from memory at batch 1) then overlaps the arithmetic instead of being a
// phase of its own that every thread waits out. The sums are added in the same order as
// run_share's.
template <class TC>
void run_share_packing_b(const Share& sh, bool trans_a, const bf16* A, int64_t lda, bool trans_b,
                         int64_t K, int64_t N, const bf16* B, int64_t ldb, const float* bias,
                         GemmActivation act, TC* C, int64_t ldc, bool use_avx512) {
  if (sh.j0 >= sh.j1 || sh.i0 >= sh.i1) return;  // more threads than panels
  const int64_t pairs = (K + 1) / 2, rows = sh.i1 - sh.i0, row_panels = ceil_div(rows, MR);
  const int64_t k_blocks = ceil_div(pairs, KC / 2);
  Scratch& s = thread_scratch();
  const int64_t last_width = last_panel_width(rows, use_avx512);
  s.a.resize(size_t(row_panels * pairs * MR));
  pack_a(trans_a, A, lda, sh.i0, rows, K, last_width, s.a.data(), use_avx512);
  s.b.resize(size_t(pairs * NR));
  if (k_blocks > 1) s.tile.resize(size_t(row_panels * MR * NR));
  float sums[MR * NR];
  for (int64_t q = sh.j0; q < sh.j1; ++q) {
    pack_b_panel(trans_b, K, N, B, ldb, q, s.b.data(), use_avx512);
    const PrefetchRegion next =
        use_avx512 && q + 1 < sh.j1 ? panel_source(trans_b, K, N, B, ldb, q + 1) : PrefetchRegion{};
    const int64_t col0 = q * NR, cols = std::min(NR, N - col0), calls = k_blocks * row_panels;
    for (int64_t p0 = 0, call = 0; p0 < pairs; p0 += KC / 2) {
      const int64_t pc = std::min(KC / 2, pairs - p0);
      const bool first = p0 == 0, last = p0 + pc == pairs;
      for (int64_t r = 0; r < row_panels; ++r, ++call) {
        float* t = k_blocks == 1 ? sums : s.tile.data() + r * MR * NR;
        if (last)
          prefetch_tile_of_c(C + (sh.i0 + r * MR) * ldc + col0, ldc, std::min(MR, rows - r * MR), cols);
        micro_tile(use_avx512, r, row_panels, last_width, pairs, p0, pc, s.a.data(),
                   s.b.data() + p0 * NR, t, NR, !first, prefetch_share(next, call, calls));
        if (last)
          store_tile(t, NR, std::min(MR, rows - r * MR), cols, bias ? bias + col0 : nullptr, act,
                     C + (sh.i0 + r * MR) * ldc + col0, ldc);
      }
    }
  }
}

}  // namespace

namespace gemm_bf16_detail {

void micro_scalar(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws, int64_t ldws,
                  bool accumulate) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < pairs; ++p, a += MR, b += NR)
    for (int64_t r = 0; r < MR; ++r) {
      const float a_lo = bits_to_float(a[r] << 16), a_hi = bits_to_float(a[r] & 0xffff0000u);
      for (int64_t c = 0; c < NR; ++c)
        acc[r][c] += a_lo * bits_to_float(b[c] << 16) + a_hi * bits_to_float(b[c] & 0xffff0000u);
    }
  for (int64_t r = 0; r < MR; ++r)
    for (int64_t c = 0; c < NR; ++c)
      ws[r * ldws + c] = accumulate ? ws[r * ldws + c] + acc[r][c] : acc[r][c];
}

}  // namespace gemm_bf16_detail

bool gemm_bf16_avx512_available() { return avx512_compiled() && cpu_has_avx512_bf16(); }

void set_gemm_bf16_path(GemmBf16Path path) {
  if (path == GemmBf16Path::automatic) path = best_path();
  if (path == GemmBf16Path::avx512_bf16 && !gemm_bf16_avx512_available())
    throw std::invalid_argument("gemm_bf16: AVX512_BF16 is not available on this CPU or build");
  chosen_path().store(path);
}

GemmBf16Path gemm_bf16_path() { return chosen_path().load(); }

const char* gemm_bf16_path_name(GemmBf16Path path) {
  switch (path) {
    case GemmBf16Path::automatic: return "automatic";
    case GemmBf16Path::avx512_bf16: return "avx512_bf16";
    case GemmBf16Path::scalar: return "scalar";
  }
  return "?";
}

PackedBf16B::PackedBf16B(bool trans_b, int64_t K, int64_t N, const bf16* B, int64_t ldb)
    : K_(K), N_(N) {
  const int64_t pairs = this->pairs(), n_panels = panels();
  data_.reset(new uint32_t[size_t(n_panels * pairs * NR)]);
  const bool use_avx512 = gemm_bf16_path() == GemmBf16Path::avx512_bf16;
  parallel_for(0, n_panels, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, pairs * NR)),
               [&](int64_t q0, int64_t q1) {
                 for (int64_t q = q0; q < q1; ++q)
                   pack_b_panel(trans_b, K, N, B, ldb, q, data_.get() + q * pairs * NR, use_avx512);
               });
}

template <class TC>
void gemm_bf16_packed(bool trans_a, int64_t M, const bf16* A, int64_t lda, const PackedBf16B& B,
                      const float* bias, TC* C, int64_t ldc, GemmActivation act) {
  const int64_t N = B.N();
  if (M <= 0 || N <= 0) return;
  if (B.K() == 0) {  // act(bias), or act(0)
    std::vector<float> row(static_cast<size_t>(N));
    for (int64_t j = 0; j < N; ++j) row[size_t(j)] = bias ? bias[j] : 0.0f;
    gemm_detail::apply_epilogue(row.data(), N, 1, N, static_cast<const float*>(nullptr), false, act);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = from_f32<TC>(row[size_t(j)]);
    return;
  }
  const bool use_avx512 = gemm_bf16_path() == GemmBf16Path::avx512_bf16;
  const int threads = threads_for(M, N, B.K());
  parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
    // A nested call gets one chunk of every share: it runs them all, one after the other.
    for (int64_t t = t0; t < t1; ++t)
      run_share(share_of(int(t), threads, M, B.panels()), trans_a, A, lda, B, bias, act, C, ldc,
                use_avx512);
  });
}

template <class TC>
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const bf16* A,
               int64_t lda, const bf16* B, int64_t ldb, const float* bias, TC* C, int64_t ldc,
               GemmActivation act) {
  if (M <= 0 || N <= 0) return;
  const int64_t panels = ceil_div(N, NR);
  const int threads = threads_for(M, N, K);
  // Where every thread takes all the rows (few of them: a ViT image's 197 tokens), each packs
  // only the panels it computes, as it goes; otherwise B is packed once for all threads.
  if (K == 0 || share_of(0, threads, M, panels).i1 < M)
    return gemm_bf16_packed(trans_a, M, A, lda, PackedBf16B(trans_b, K, N, B, ldb), bias, C, ldc,
                            act);
  const bool use_avx512 = gemm_bf16_path() == GemmBf16Path::avx512_bf16;
  parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      run_share_packing_b(share_of(int(t), threads, M, panels), trans_a, A, lda, trans_b, K, N, B,
                          ldb, bias, act, C, ldc, use_avx512);
  });
}

template <class TC>
void gemm_bf16_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       const bf16* A, int64_t lda, int64_t stride_a, const bf16* B, int64_t ldb,
                       int64_t stride_b, const float* bias, TC* C, int64_t ldc, int64_t stride_c,
                       GemmActivation act) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if (batch == 1)
    return gemm_bf16(trans_a, trans_b, M, N, K, A, lda, B, ldb, bias, C, ldc, act);
  PackedBf16B shared;
  if (stride_b == 0) shared = PackedBf16B(trans_b, K, N, B, ldb);
  for (int64_t b = 0; b < batch; ++b) {
    if (stride_b == 0) {
      gemm_bf16_packed(trans_a, M, A + b * stride_a, lda, shared, bias, C + b * stride_c, ldc, act);
    } else {
      gemm_bf16(trans_a, trans_b, M, N, K, A + b * stride_a, lda, B + b * stride_b, ldb, bias,
                C + b * stride_c, ldc, act);
    }
  }
}

#define SH_INSTANTIATE(TC)                                                                      \
  template void gemm_bf16_packed<TC>(bool, int64_t, const bf16*, int64_t, const PackedBf16B&,   \
                                     const float*, TC*, int64_t, GemmActivation);               \
  template void gemm_bf16<TC>(bool, bool, int64_t, int64_t, int64_t, const bf16*, int64_t,      \
                              const bf16*, int64_t, const float*, TC*, int64_t, GemmActivation); \
  template void gemm_bf16_batched<TC>(int64_t, bool, bool, int64_t, int64_t, int64_t,           \
                                      const bf16*, int64_t, int64_t, const bf16*, int64_t,      \
                                      int64_t, const float*, TC*, int64_t, int64_t,             \
                                      GemmActivation);
SH_INSTANTIATE(float)
SH_INSTANTIATE(bf16)
#undef SH_INSTANTIATE

}  // namespace shallow::cpu
