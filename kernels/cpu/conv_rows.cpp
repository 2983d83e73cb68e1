// The "rows" path: convolutions with few input rows per output row (C_in * kH small), stride 1
// and no dilation along W. Output row (n, oh) of channel co is
//   y[n, co, oh, :] = b[co] + sum over (c, kh), kw of w[co, c, kh, kw] * x[n, c, ih, kw : kw + W_out]
// (x's rows zero-bordered by pad_w, in a copy of the image, when there is padding along W).
// a sliding dot product: the register tile reads input row ih at the kW successive offsets as
// the rows of its B (ldb = 1), which is the column matrix without building it. TSConv's
// temporal convolution (C_in = 1, kH = 1, 25 taps) would otherwise be a GEMM with K = 25 per
// image, bound by writing and re-reading a column matrix 25 times the size of the input.
// The weight gradient is the same product turned around: gw[co, c, kh, :] sums gy's rows times
// x's rows read at the tap offsets, the taps as columns.
#include <vector>

#include "kernels/cpu/conv_paths.h"
#include "kernels/cpu/conv_tile.h"
#include "kernels/cpu/parallel.h"

namespace shallow::cpu::conv_detail {
namespace {

using conv_tile::Operands;
using conv_tile::Start;

// Sizes, with padding along W made part of the rows: Wp = W + 2 * pad_w columns per row.
struct Dims {
  int64_t Ho, Wo, P, Wp, HWp, K;  // K: weights per output channel
  explicit Dims(const Conv2dShape& s)
      : Ho(s.H_out()), Wo(s.W_out()), P(Ho * Wo), Wp(s.W + 2 * s.pad_w), HWp(s.H * Wp),
        K(s.C_in * s.kH * s.kW) {}
};

// Image n with its rows Wp wide: x itself without padding along W, else a copy with a zero
// border in `buffer`, so that the taps read the padding as any other column.
template <class T>
const T* padded_image(const Conv2dShape& s, const Dims& d, const T* x, int64_t n,
                      std::vector<T>& buffer) {
  const T* image = x + n * s.C_in * s.H * s.W;
  if (s.pad_w == 0) return image;
  buffer.assign(size_t(s.C_in * d.HWp), T(0));
  for (int64_t row = 0; row < s.C_in * s.H; ++row)
    std::copy(image + row * s.W, image + (row + 1) * s.W, buffer.data() + row * d.Wp + s.pad_w);
  return buffer.data();
}

}  // namespace

template <class T>
void rows_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  const Dims d(s);
  // Each task is one image and kRows output channels, its rows in order: the output (the
  // largest tensor: TSConv's is 25 times its input) is then written as kRows sequential
  // streams; all channels' rows in lockstep (40 streams) made TSConv's forward 35 ms instead
  // of 25 on one core. The image's rows are read again per block of channels, from cache.
  constexpr int kRows = 8;
  const int64_t blocks = (s.C_out + kRows - 1) / kRows;
  parallel_for(0, s.N * blocks, grain_for(kRows * d.P * d.K), [&](int64_t t0, int64_t t1) {
    std::vector<T> buffer;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / blocks, co = t % blocks * kRows;
      const T* image = padded_image(s, d, x, n, buffer);
      const int64_t channels = std::min<int64_t>(kRows, s.C_out - co);
      for (int64_t oh = 0; oh < d.Ho; ++oh) {
        // The kernel rows kh whose input row ih = oh * stride_h - pad_h + kh * dil_h exists.
        const int64_t ih0 = oh * s.stride_h - s.pad_h;
        const Range kh = valid_outputs(ih0, s.dil_h, s.H, s.kH);
        T* yrow = y + (n * s.C_out + co) * d.P + oh * d.Wo;
        for (int64_t c = 0; c < s.C_in; ++c) {
          Operands<T> op;
          op.a = w + co * d.K + (c * s.kH + kh.begin) * s.kW;
          op.a_rs = d.K, op.a_ks = 1, op.a_bs = s.kW;
          op.b = image + c * d.HWp, op.ldb = 1, op.b_bs = s.dil_h * d.Wp;
          if (kh.end > kh.begin) op.b += (ih0 + kh.begin * s.dil_h) * d.Wp;
          op.K = s.kW, op.nb = kh.end - kh.begin;
          const Start start = c > 0 ? Start::accumulate : b ? Start::row_bias : Start::zero;
          // 8 channels x 3 vectors: 24 accumulators, 11 loads per 24 FMAs.
          conv_tile::tiles<T, kRows, 3>(op, channels, d.Wo, yrow, d.P, start, b ? b + co : nullptr);
        }
      }
    }
  });
}

template <class T>
void rows_backward_weight(const Conv2dShape& s, const T* gy, const T* x, T* gw) {
  const Dims d(s);
  // Each thread sums its images into its own copy of gw; the copies are added at the end.
  const int64_t slots = std::max<int64_t>(
      1, std::min<int64_t>({int64_t(num_threads()), s.N,
                            s.N * s.C_out * d.P * d.K / kGrainElems}));
  std::vector<std::vector<T>> partial(static_cast<size_t>(slots));
  parallel_for(0, slots, 1, [&](int64_t i0, int64_t i1) {
    std::vector<T> buffer;
    for (int64_t i = i0; i < i1; ++i) {
      std::vector<T>& sum = partial[size_t(i)];
      sum.assign(size_t(s.C_out * d.K), T(0));
      for (int64_t n = s.N * i / slots; n < s.N * (i + 1) / slots; ++n) {
        const T* image = padded_image(s, d, x, n, buffer);
        for (int64_t c = 0; c < s.C_in; ++c)
          for (int64_t kh = 0; kh < s.kH; ++kh) {
            // The output rows whose input row oh * stride_h + kh * dil_h - pad_h exists.
            const int64_t offset = kh * s.dil_h - s.pad_h;
            const Range oh = valid_outputs(offset, s.stride_h, s.H, d.Ho);
            if (oh.end == oh.begin) continue;
            Operands<T> op;
            op.a = gy + n * s.C_out * d.P + oh.begin * d.Wo;
            op.a_rs = d.P, op.a_ks = 1, op.a_bs = d.Wo;
            op.b = image + c * d.HWp + (oh.begin * s.stride_h + offset) * d.Wp;
            op.ldb = 1, op.b_bs = s.stride_h * d.Wp;
            op.K = d.Wo, op.nb = oh.end - oh.begin;
            // 8 channels x 2 vectors of taps (25 taps: 2 vectors).
            conv_tile::tiles<T, 8, 2>(op, s.C_out, s.kW, sum.data() + (c * s.kH + kh) * s.kW,
                                      d.K, Start::accumulate, nullptr);
          }
      }
    }
  });
  std::copy(partial[0].begin(), partial[0].end(), gw);
  for (size_t i = 1; i < partial.size(); ++i)
    for (size_t j = 0; j < partial[i].size(); ++j) gw[j] += partial[i][j];
}

#define SH_INSTANTIATE(T)                                                                \
  template void rows_forward<T>(const Conv2dShape&, const T*, const T*, const T*, T*); \
  template void rows_backward_weight<T>(const Conv2dShape&, const T*, const T*, T*);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cpu::conv_detail
