// The "columns" path: convolutions whose column matrix is the input itself. With a 1x1 kernel
// (stride 1), or a kernel covering the whole height (no padding, so one output row), column
// (c, kh), position p of image n is x[n] viewed [K = C_in * kH, P = H_out * W_out], so
//   y[n] = W [C_out, K] x[n] [K, P]            gx[n] = W^T [K, C_out] gy[n] [C_out, P]
//   gW^T [K, C_out] = sum over n of x[n] [K, P] gy[n]^T [P, C_out]
// The rows are short (TSConv's spatial convolution: P = 36, K = 2520, C_out = 40): a GEMM per
// image spends more on packing W and x[n] than on arithmetic, so register tiles read both in
// place instead, each thread taking whole images (or, for the weight gradient, whole rows of gW).
#include <vector>

#include "kernels/cpu/conv_paths.h"
#include "kernels/cpu/conv_tile.h"
#include "kernels/cpu/parallel.h"

namespace shallow::cpu::conv_detail {
namespace {

using conv_tile::Operands;
using conv_tile::Start;

// 8 rows x 3 vectors: 24 accumulators, 11 loads per 24 FMAs, and 3 vectors cover a 36-wide
// row with one masked.
constexpr int kRows = 8, kVectors = 3;
// K is cut into chunks of this many rows of B (36 columns x 256 x 4 bytes = 36 KiB: L1 and L2).
constexpr int64_t kChunk = 256;
// The weight gradient sums this many bytes of gy^T (its B) at a time, to keep them in L1.
constexpr int64_t kGradChunkBytes = 24 * 1024;

struct Dims {
  int64_t K, P, image;  // rows and columns of the column matrix, elements per input image
  explicit Dims(const Conv2dShape& s)
      : K(s.C_in * s.kH), P(s.H_out() * s.W_out()), image(s.C_in * s.H * s.W) {}
};

}  // namespace

template <class T>
void columns_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  const Dims d(s);
  parallel_for(0, s.N, grain_for(s.C_out * d.P * d.K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      Operands<T> op;
      op.a = w, op.a_rs = d.K, op.a_ks = 1;
      op.b = x + n * d.image, op.ldb = d.P;
      op.K = d.K;
      conv_tile::tiles<T, kRows, kVectors>(op, s.C_out, d.P, y + n * s.C_out * d.P, d.P,
                                           b ? Start::row_bias : Start::zero, b, kChunk);
    }
  });
}

template <class T>
void columns_backward_input(const Conv2dShape& s, const T* gy, const T* w, T* gx) {
  const Dims d(s);
  parallel_for(0, s.N, grain_for(s.C_out * d.P * d.K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      Operands<T> op;
      op.a = w, op.a_rs = 1, op.a_ks = d.K;  // W^T, read in place
      op.b = gy + n * s.C_out * d.P, op.ldb = d.P;
      op.K = s.C_out;
      conv_tile::tiles<T, kRows, kVectors>(op, d.K, d.P, gx + n * d.image, d.P, Start::zero,
                                           nullptr, kChunk);
    }
  });
}

template <class T>
void columns_backward_weight(const Conv2dShape& s, const T* gy, const T* x, T* gw) {
  const Dims d(s);
  const int64_t C = s.C_out;
  const int64_t images_per_chunk =
      std::max<int64_t>(1, kGradChunkBytes / int64_t(sizeof(T) * d.P * C));
  // Threads take disjoint rows of gW^T (columns of gW): no partial sums to add up. Each sums
  // its rows over a few images at a time, reading each image's rows x[n][r0:r1], the large
  // operand, in one sequential pass; its gW^T rows stay in L2. The chunk's gy^T, [P, C_out]
  // per image so that its rows are contiguous over the output channels, is made by each
  // thread into L1: a small copy (gy is the smallest tensor here), cheaper than a parallel
  // pass of its own with the threads' wake-up and join.
  parallel_for(0, d.K, std::max<int64_t>(kRows, grain_for(s.N * d.P * C)), [&](int64_t r0,
                                                                               int64_t r1) {
    std::vector<T> gwt(size_t((r1 - r0) * C)), gyt(size_t(images_per_chunk * d.P * C));
    for (int64_t n0 = 0; n0 < s.N; n0 += images_per_chunk) {
      const int64_t images = std::min(images_per_chunk, s.N - n0);
      for (int64_t n = 0; n < images; ++n)
        conv_simd::transpose(gy + (n0 + n) * C * d.P, d.P, C, d.P, gyt.data() + n * d.P * C, C);
      Operands<T> op;
      op.a = x + n0 * d.image + r0 * d.P, op.a_rs = d.P, op.a_ks = 1, op.a_bs = d.image;
      op.b = gyt.data(), op.ldb = C, op.b_bs = d.P * C;
      op.K = d.P, op.nb = images;
      conv_tile::tiles<T, kRows, kVectors>(op, r1 - r0, C, gwt.data(), C,
                                           n0 == 0 ? Start::zero : Start::accumulate, nullptr);
    }
    conv_simd::transpose(gwt.data(), C, r1 - r0, C, gw + r0, d.K);
  });
}

#define SH_INSTANTIATE(T)                                                                   \
  template void columns_forward<T>(const Conv2dShape&, const T*, const T*, const T*, T*); \
  template void columns_backward_input<T>(const Conv2dShape&, const T*, const T*, T*);    \
  template void columns_backward_weight<T>(const Conv2dShape&, const T*, const T*, T*);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cpu::conv_detail
