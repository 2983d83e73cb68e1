// The convolution's forward as one GEMM over the whole batch, with the column matrix never
// formed (an "implicit GEMM"):
//   y[C_out, N * P] = w[C_out, K] * col[K, N * P],  K = C_in * kH * kW,  P = H_out * W_out,
// column j being output position j % P of image j / P. The weight is packed once for all
// images and shared by the threads; each thread packs the panels of col it computes straight
// from the input (pack_columns), so neither an im2col copy nor a second pass of GEMM packing
// over it is made, and small images (a ResNet's 7 x 7 stage) fill the register tiles across
// image boundaries instead of leaving a per-image GEMM a few columns wide. The register tiles,
// the weight's packing and the epilogue are the GEMM's own (gemm_kernels.h).
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/conv_paths.h"
#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/scratch.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace shallow::cpu::conv_detail {
namespace {

using gemm_detail::ceil_div;
using gemm_detail::MicroKernel;


// The packed weight, shared by the threads for the duration of one call.
thread_local Scratch packed_weight;
// Each thread's packed panels of col.
thread_local Scratch packed_columns;

// The lanes of a panel that lie in one output row of one image: their inputs along W are
// evenly spaced (contiguous with stride 1), which is what makes a row of the panel a few
// vector loads.
template <class T>
struct Run {
  int64_t lane0, lane1;  // lanes [lane0, lane1) of the panel
  const T* image;        // the image's first input channel
  int64_t ih0, iw0;      // input row and column of the first lane's tap (0, 0), padding applied
};

struct Geometry {
  int64_t Ho, Wo, P, K, columns;  // columns: N * P
  explicit Geometry(const Conv2dShape& s)
      : Ho(s.H_out()), Wo(s.W_out()), P(Ho * Wo), K(s.C_in * s.kH * s.kW), columns(s.N * P) {}
};

// Splits columns [j0, j0 + nr) into runs (lanes past the last column belong to none).
template <class T>
int split_runs(const Conv2dShape& s, const Geometry& g, const T* x, int64_t j0, int64_t nr,
               Run<T>* runs) {
  int count = 0;
  for (int64_t l = 0, j = j0; l < nr && j < g.columns;) {
    const int64_t n = j / g.P, p = j % g.P, oh = p / g.Wo, ow = p % g.Wo;
    const int64_t len = std::min({nr - l, g.Wo - ow, g.columns - j});
    runs[count++] = {l, l + len, x + n * s.C_in * s.H * s.W, oh * s.stride_h - s.pad_h,
                     ow * s.stride_w - s.pad_w};
    l += len;
    j += len;
  }
  return count;
}

// Row k of a panel: lane l holds col[k, j0 + l], zero where the tap falls in the padding and
// past the last column.
template <class T>
void column_row_any(const Conv2dShape& s, const Run<T>* runs, int count, int64_t c, int64_t kh,
                    int64_t kw, int64_t nr, T* dst) {
  std::fill(dst, dst + nr, T(0));
  for (int r = 0; r < count; ++r) {
    const Run<T>& run = runs[r];
    const int64_t ih = run.ih0 + kh * s.dil_h;
    if (ih < 0 || ih >= s.H) continue;
    const T* src = run.image + (c * s.H + ih) * s.W;
    const int64_t iw0 = run.iw0 + kw * s.dil_w;
    for (int64_t l = run.lane0; l < run.lane1; ++l) {
      const int64_t iw = iw0 + (l - run.lane0) * s.stride_w;
      if (iw >= 0 && iw < s.W) dst[l] = src[iw];
    }
  }
}

// Packs rows [k0, k0 + kc) of col's columns [jb * nr, je * nr) as panels of kc x nr, k-major,
// one after the other; one element at a time (the AVX-512 float version is below). Row by row
// across all the panels, so that each input row is read along its length: panel by panel, the
// reads would hop between kc rows far apart, a cache line from each, which the hardware
// prefetchers cannot follow (a 1x1 convolution at 56 x 56 ran at a quarter of the speed).
template <class T>
void pack_columns_any(const Conv2dShape& s, const Geometry& g, const T* x, int64_t jb,
                      int64_t je, int64_t k0, int64_t kc, int64_t nr, T* dst) {
  std::vector<Run<T>> runs(size_t((je - jb) * nr));  // a run is at least one lane
  std::vector<int> first(size_t(je - jb + 1));
  int total = 0;
  for (int64_t jp = jb; jp < je; ++jp) {
    first[size_t(jp - jb)] = total;
    total += split_runs(s, g, x, jp * nr, nr, runs.data() + total);
  }
  first[size_t(je - jb)] = total;
  // Row k is tap (kh, kw) of input channel c: k = (c * kH + kh) * kW + kw, stepped without
  // divisions.
  int64_t c = k0 / (s.kH * s.kW), kh = (k0 / s.kW) % s.kH, kw = k0 % s.kW;
  for (int64_t k = 0; k < kc; ++k) {
    for (int64_t q = 0; q < je - jb; ++q)
      column_row_any(s, runs.data() + first[size_t(q)], first[size_t(q + 1)] - first[size_t(q)],
                     c, kh, kw, nr, dst + (q * kc + k) * nr);
    if (++kw == s.kW) {
      kw = 0;
      if (++kh == s.kH) kh = 0, ++c;
    }
  }
}

#if defined(__AVX512F__)
// With stride 1 along W, the valid lanes of a run are one masked load per 16 lanes: lane l
// reads iw0 + l - lane0 of its input row. For a given tap these loads are the same for every
// input channel but for the channel's offset, so each panel's loads are planned once per tap
// and each packed row is then just its plan's few loads. Every vector of the plan has the same
// number of load slots (the most any of them needs: 2 where rows are at least 15 wide), unused
// ones with an empty mask, so that the packing loop has no data-dependent trip counts.
struct LoadPlan {
  int slots = 0;
  // Slot e of (panel q, tap t, vector v) is at ((q * taps + t) * vectors + v) * slots + e.
  std::vector<std::int64_t> offset;  // of lane 0, in elements from the channel's start in x;
                                     // may be negative
  std::vector<__mmask16> mask;       // the lanes read; masked-off lanes are never touched
};

void plan_loads(const Conv2dShape& s, const Geometry& g, const float* x, int64_t jb, int64_t je,
                int64_t nr, LoadPlan& plan) {
  const int64_t taps = s.kH * s.kW, vectors = nr / 16;
  // First the loads of each vector as a list, then spread into equal slots.
  std::vector<std::pair<std::int64_t, __mmask16>> loads;
  std::vector<int> first;
  first.reserve(size_t((je - jb) * taps * vectors + 1));
  Run<float> runs[64];
  int most = 1;
  for (int64_t jp = jb; jp < je; ++jp) {
    const int count = split_runs(s, g, x, jp * nr, nr, runs);
    for (int64_t kh = 0; kh < s.kH; ++kh)
      for (int64_t kw = 0; kw < s.kW; ++kw)
        for (int64_t v = 0; v < nr; v += 16) {
          first.push_back(int(loads.size()));
          for (int r = 0; r < count; ++r) {
            const Run<float>& run = runs[r];
            const int64_t ih = run.ih0 + kh * s.dil_h, iw0 = run.iw0 + kw * s.dil_w;
            if (ih < 0 || ih >= s.H) continue;
            // Lanes whose input column lies in [0, W): iw0 + (l - lane0) in [0, W).
            const int64_t lo = std::max({run.lane0, run.lane0 - iw0, v});
            const int64_t hi = std::min({run.lane1, run.lane0 + s.W - iw0, v + 16});
            if (lo >= hi) continue;
            loads.push_back({(run.image - x) + ih * s.W + iw0 - run.lane0 + v,
                             __mmask16(((1u << (hi - lo)) - 1u) << (lo - v))});
          }
          most = std::max(most, int(loads.size()) - first.back());
        }
  }
  first.push_back(int(loads.size()));
  plan.slots = most <= 2 ? most : (most <= 4 ? 4 : most);
  const size_t entries = first.size() - 1;
  plan.offset.assign(entries * size_t(plan.slots), 0);
  plan.mask.assign(entries * size_t(plan.slots), 0);
  for (size_t i = 0; i < entries; ++i)
    for (int e = first[i]; e < first[i + 1]; ++e) {
      const size_t slot = i * size_t(plan.slots) + size_t(e - first[i]);
      plan.offset[slot] = loads[size_t(e)].first;
      plan.mask[slot] = loads[size_t(e)].second;
    }
}

// `Slots` is the plan's slot count where it is one of the common ones (unrolled), else 0.
// Row by row (k outer): reading the plan again for each row costs less than the cache misses
// of going tap by tap through all the channels (measured: 64 x 56 x 56 at batch 8, the packing
// 29 % of the tiles' time this way, 38 % tap by tap).
template <int Slots>
void pack_columns_avx512(const Conv2dShape& s, const float* x, int64_t panels, int64_t k0,
                         int64_t kc, int64_t nr, const LoadPlan& plan, float* dst) {
  const int64_t taps = s.kH * s.kW, vectors = nr / 16, plane = s.H * s.W;
  const int slots = Slots > 0 ? Slots : plan.slots;
  const std::int64_t* offset = plan.offset.data();
  const __mmask16* mask = plan.mask.data();
  int64_t c = k0 / taps, t = k0 % taps;
  for (int64_t k = 0; k < kc; ++k) {
    // Formed from an integer: a load's start may lie before x, which no pointer may.
    const std::intptr_t channel = reinterpret_cast<std::intptr_t>(x + c * plane);
    for (int64_t q = 0; q < panels; ++q) {
      const int64_t entry = (q * taps + t) * vectors;
      float* row = dst + (q * kc + k) * nr;
      for (int64_t v = 0; v < vectors; ++v) {
        const std::int64_t* o = offset + (entry + v) * slots;
        const __mmask16* m = mask + (entry + v) * slots;
        __m512 lanes = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int e = 0; e < slots; ++e)
          lanes = _mm512_mask_loadu_ps(lanes, m[e],
                                       reinterpret_cast<const float*>(channel + std::intptr_t(o[e]) * 4));
        _mm512_storeu_ps(row + 16 * v, lanes);
      }
    }
    if (++t == taps) t = 0, ++c;
  }
}
#endif

// Packs the panels of one block of columns, k block after k block, by the fastest way this
// build and shape allow: the AVX-512 float path's loads are planned once per block (they do
// not depend on k), anything else goes one element at a time.
template <class T>
class ColumnPacker {
 public:
  ColumnPacker(const Conv2dShape& s, const Geometry& g, const T* x, int64_t nr)
      : s_(s), g_(g), x_(x), nr_(nr) {}

  // The block that pack() fills from now on: panels [jb, je).
  void start_block(int64_t jb, int64_t je) {
    jb_ = jb, je_ = je;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)
      if (planned()) plan_loads(s_, g_, x_, jb, je, nr_, plan_);
#endif
  }

  // Rows [k0, k0 + kc) of the block's panels into dst, kc x nr each, one after the other.
  void pack(int64_t k0, int64_t kc, T* dst) const {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      if (planned()) {
        const int64_t panels = je_ - jb_;
        switch (plan_.slots) {
          case 1: return pack_columns_avx512<1>(s_, x_, panels, k0, kc, nr_, plan_, dst);
          case 2: return pack_columns_avx512<2>(s_, x_, panels, k0, kc, nr_, plan_, dst);
          case 4: return pack_columns_avx512<4>(s_, x_, panels, k0, kc, nr_, plan_, dst);
          default: return pack_columns_avx512<0>(s_, x_, panels, k0, kc, nr_, plan_, dst);
        }
      }
    }
#endif
    pack_columns_any(s_, g_, x_, jb_, je_, k0, kc, nr_, dst);
  }

 private:
  bool planned() const { return std::is_same_v<T, float> && s_.stride_w == 1 && nr_ % 16 == 0; }

  const Conv2dShape& s_;
  const Geometry& g_;
  const T* x_;
  int64_t nr_, jb_ = 0, je_ = 0;
#if defined(__AVX512F__)
  LoadPlan plan_;
#endif
};

// Adds (or, with beta 0, writes) an m x nr result held in `tile` to the columns of y it
// belongs to, which may lie in several images; at the last k block, applies the epilogue.
template <class T>
void store_split(const Conv2dShape& s, const Geometry& g, const T* tile, int64_t nr, int64_t m0,
                 int64_t m, int64_t j0, T beta, T* y, const ConvEpilogue<T>& ep, bool last) {
  for (int64_t l = 0, j = j0; l < nr && j < g.columns;) {
    const int64_t n = j / g.P, p = j % g.P, len = std::min({nr - l, g.P - p, g.columns - j});
    T* dst = y + (n * s.C_out + m0) * g.P + p;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t q = 0; q < len; ++q) {
        T& out = dst[i * g.P + q];
        out = beta == T(0) ? tile[i * nr + l + q] : tile[i * nr + l + q] + out;
      }
    if (last)
      finish_outputs(dst, ep.residual ? ep.residual + (dst - y) : nullptr, g.P, m0, m, len, ep);
    l += len;
    j += len;
  }
}

// The register tile a call runs: the kernel's full one, or its short one where the full one
// would overhang the output channels by more than a sixteenth and the short one less (64
// channels: 72 rows computed with 12-row tiles, 64 with 8-row ones). At batch 8, best of 3
// interleaved runs: 64 x 56 x 56 171 -> 186 GFLOP/s, the stem's 32 -> 64 at 112 x 112
// 167 -> 187, RN50's whole forward 14.7 -> 15.5 images/s.
template <class T>
struct Tiling {
  int64_t mr;
  void (*tile)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta);

  Tiling(const MicroKernel<T>& kern, int64_t rows) : mr(kern.blocking.mr), tile(kern.tile) {
    auto overhang = [&](int64_t r) { return ceil_div(rows, r) * r - rows; };
    if (kern.short_tile && 16 * overhang(mr) > rows && overhang(kern.short_mr) < overhang(mr))
      mr = kern.short_mr, tile = kern.short_tile;
  }
};

// Thread t's share: rows [i_begin, i_end) of y's channels and panels [jp0, jp1) of columns.
template <class T>
void run_thread(const Conv2dShape& s, const Geometry& g, const MicroKernel<T>& kern,
                const Tiling<T>& tiling, const T* x, const T* packed_w, int64_t m_pad,
                const ConvEpilogue<T>& ep, T* y, int64_t i_begin, int64_t i_end, int64_t jp0,
                int64_t jp1) {
  const GemmBlocking& bl = kern.blocking;
  const int64_t mr = tiling.mr, nr = bl.nr, kc_max = std::min(bl.kc, g.K);
  const int64_t mc_block = std::max(mr, bl.mc / mr * mr);  // whole tiles: A's panels start there
  // Panels packed per block: 128 Ki values (512 KiB of float), meant to stay in L2 beside a
  // row block of the weight while every row block reads them. On CLIP RN50's 3x3 convolutions
  // at batch 8, budgets from 64 KiB to 4 MiB (and k blocks of 256 to 1024) measured within
  // the noise of one another.
  const int64_t block_panels = std::max<int64_t>(1, (int64_t(128) << 10) / (kc_max * nr));
  T* panels = packed_columns.get<T>(size_t(block_panels * kc_max * nr));
  T edge[16 * 64];  // one register tile, for tiles that overhang or span images
  ColumnPacker<T> packer(s, g, x, nr);
  for (int64_t jb = jp0; jb < jp1; jb += block_panels) {
    const int64_t je = std::min(jp1, jb + block_panels);
    packer.start_block(jb, je);
    for (int64_t pc = 0; pc < g.K; pc += bl.kc) {
      const int64_t kc = std::min(bl.kc, g.K - pc);
      const T beta = pc == 0 ? T(0) : T(1);
      const bool last = pc + kc == g.K;
      const T* a_block = packed_w + pc * m_pad;
      packer.pack(pc, kc, panels);
      for (int64_t ic = i_begin; ic < i_end; ic += mc_block) {
        const int64_t mc = std::min(mc_block, i_end - ic);
        for (int64_t jp = jb; jp < je; ++jp) {
          const int64_t j0 = jp * nr;
          const T* b = panels + (jp - jb) * kc * nr;
          const int64_t p0 = j0 % g.P;
          const bool whole = j0 + nr <= g.columns && p0 + nr <= g.P;  // full width, one image
          T* c_panel = y + (j0 / g.P * s.C_out) * g.P + p0;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t m0 = ic + ir, m = std::min(mr, i_end - m0);
            const T* a = a_block + m0 * kc;
            if (whole && m == mr) {
              T* c = c_panel + m0 * g.P;
              tiling.tile(kc, a, b, c, g.P, T(1), beta);
              if (last)
                finish_outputs(c, ep.residual ? ep.residual + (c - y) : nullptr, g.P, m0, m, nr, ep);
            } else {
              tiling.tile(kc, a, b, edge, nr, T(1), T(0));
              store_split(s, g, edge, nr, m0, m, j0, beta, y, ep, last);
            }
          }
        }
      }
    }
  }
}

}  // namespace

template <class T>
void implicit_gemm_forward(const Conv2dShape& s, const T* x, const T* w,
                           const ConvEpilogue<T>& ep, T* y) {
  const Geometry g(s);
  const MicroKernel<T>& kern = gemm_detail::active_kernel<T>();
  const GemmBlocking& bl = kern.blocking;
  const Tiling<T> tiling(kern, s.C_out);
  const int64_t mr = tiling.mr, nr = bl.nr;
  const int64_t m_tiles = ceil_div(s.C_out, mr), m_pad = m_tiles * mr;
  const int64_t panels = ceil_div(g.columns, nr);
  // The weight, [C_out, K] row-major, as the GEMM's A: per k block of kc, m_tiles panels of
  // kc x mr (block pc starts at pc * m_pad).
  T* packed_w = packed_weight.get<T>(size_t(m_pad * g.K));
  const int64_t k_blocks = ceil_div(g.K, bl.kc);
  parallel_for(0, k_blocks * m_tiles, std::max<int64_t>(1, 8192 / g.K), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t pc = t / m_tiles * bl.kc, i = t % m_tiles;
      const int64_t kc = std::min(bl.kc, g.K - pc);
      kern.pack_a(false, w, g.K, i * mr, std::min(mr, s.C_out - i * mr), pc, kc, mr,
                  packed_w + pc * m_pad + i * mr * kc);
    }
  });
  // Below about 20 us of one core's work the threads are not worth waking.
  const double flops = 2.0 * double(s.C_out) * double(g.columns) * double(g.K);
  const int threads = flops < 2e6 ? 1 : num_threads();
  // Each thread packs the panels it computes, so row groups pack every panel once each, and
  // column groups each read all of the packed weight. Where the column matrix is the larger
  // operand, the threads split the columns (64 x 56 x 56 at batch 8, where the GEMM's rule
  // picked two row groups on a tie: 120-150 -> 155-170 GFLOP/s); where the weight is (512 x 7 x 7:
  // K 4608 by 512 against 392 columns), the GEMM's rule.
  const bool split_columns = g.columns >= 2 * s.C_out && panels >= 2 * threads;
  const bool split_rows = !split_columns && m_tiles >= 2 * threads;
  const gemm_detail::Grid grid = split_columns ? gemm_detail::Grid{1, threads}
                                 : split_rows  ? gemm_detail::Grid{threads, 1}
                                               : gemm_detail::choose_grid(threads, m_tiles, panels);
  auto part = [&](int t) {
    const int row_group = t / grid.tn, col_group = t % grid.tn;
    const int64_t i_begin = std::min(s.C_out, m_tiles * row_group / grid.tm * mr);
    const int64_t i_end = std::min(s.C_out, m_tiles * (row_group + 1) / grid.tm * mr);
    const int64_t jp0 = panels * col_group / grid.tn, jp1 = panels * (col_group + 1) / grid.tn;
    if (i_begin < i_end && jp0 < jp1)
      run_thread(s, g, kern, tiling, x, packed_w, m_pad, ep, y, i_begin, i_end, jp0, jp1);
  };
  if (threads == 1) return part(0);
  parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) part(int(t));
  });
}

template void implicit_gemm_forward<float>(const Conv2dShape&, const float*, const float*,
                                           const ConvEpilogue<float>&, float*);
template void implicit_gemm_forward<double>(const Conv2dShape&, const double*, const double*,
                                            const ConvEpilogue<double>&, double*);

}  // namespace shallow::cpu::conv_detail
