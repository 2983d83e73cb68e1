// The conv2d kernels, float and double, against a naive loop in double: forward (with and
// without bias), input, weight and bias gradients, for shapes on each path (conv2d_path) at
// widths on either side of the vector length, batches of 1 and 3, odd channel counts,
// K longer than a chunk, more output channels than a tile, kernel rows that fall wholly in
// the padding; at 1 to 3 threads. Each case also checks that it took the path it was meant for.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/conv.h"
#include "kernels/cpu/conv_paths.h"
#include "kernels/cpu/gemm_config.h"
#include "kernels/cpu/parallel.h"

using namespace shallow::cpu;

namespace {

std::string str(const Conv2dShape& s) {
  return "x [" + std::to_string(s.N) + "," + std::to_string(s.C_in) + "," + std::to_string(s.H) +
         "," + std::to_string(s.W) + "] w [" + std::to_string(s.C_out) + "," +
         std::to_string(s.C_in / s.groups) + "," + std::to_string(s.kH) + "," +
         std::to_string(s.kW) + "] stride (" + std::to_string(s.stride_h) + "," +
         std::to_string(s.stride_w) + ") pad (" + std::to_string(s.pad_h) + "," +
         std::to_string(s.pad_w) + ") dil (" + std::to_string(s.dil_h) + "," +
         std::to_string(s.dil_w) + ") groups " + std::to_string(s.groups);
}

// The convolution as its definition: every output, every tap.
struct Naive {
  const Conv2dShape& s;
  int64_t Ho, Wo, Cg, Cog;
  explicit Naive(const Conv2dShape& shape)
      : s(shape), Ho(s.H_out()), Wo(s.W_out()), Cg(s.C_in / s.groups), Cog(s.C_out / s.groups) {}

  // Calls f(x index, w index, y index) for every product term of the convolution.
  template <class F>
  void for_each_term(F f) const {
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t co = 0; co < s.C_out; ++co)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow)
            for (int64_t c = 0; c < Cg; ++c)
              for (int64_t kh = 0; kh < s.kH; ++kh)
                for (int64_t kw = 0; kw < s.kW; ++kw) {
                  const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h;
                  const int64_t iw = ow * s.stride_w - s.pad_w + kw * s.dil_w;
                  if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                  const int64_t ci = co / Cog * Cg + c;
                  f(((n * s.C_in + ci) * s.H + ih) * s.W + iw,
                    ((co * Cg + c) * s.kH + kh) * s.kW + kw,
                    ((n * s.C_out + co) * Ho + oh) * Wo + ow);
                }
  }
};

std::vector<double> random_values(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> v(n);
  for (double& e : v) e = u(rng);
  return v;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <class T>
::testing::AssertionResult near(const std::vector<T>& got, const std::vector<double>& want,
                                double tol, const char* what) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << what << ": size";
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = double(got[i]), e = want[i];
    if (!(std::abs(g - e) <= tol * (1 + std::abs(e))))
      return ::testing::AssertionFailure() << what << "[" << i << "] = " << g << ", want " << e;
  }
  return ::testing::AssertionSuccess();
}

template <class T>
void check_against_naive(const Conv2dShape& s, bool bias, double tol) {
  const Naive ref(s);
  const size_t nx = size_t(s.N * s.C_in * s.H * s.W);
  const size_t nw = size_t(s.C_out * (s.C_in / s.groups) * s.kH * s.kW);
  const size_t ny = size_t(s.N * s.C_out * ref.Ho * ref.Wo);
  const auto x = random_values(nx, 1), w = random_values(nw, 2), b = random_values(size_t(s.C_out), 3);
  const auto gy = random_values(ny, 4);

  std::vector<double> y(ny), gx(nx, 0), gw(nw, 0), gb(size_t(s.C_out), 0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t co = 0; co < s.C_out; ++co)
      for (int64_t p = 0; p < ref.Ho * ref.Wo; ++p)
        y[size_t((n * s.C_out + co) * ref.Ho * ref.Wo + p)] = bias ? b[size_t(co)] : 0;
  ref.for_each_term([&](int64_t xi, int64_t wi, int64_t yi) {
    y[size_t(yi)] += x[size_t(xi)] * w[size_t(wi)];
    gx[size_t(xi)] += gy[size_t(yi)] * w[size_t(wi)];
    gw[size_t(wi)] += gy[size_t(yi)] * x[size_t(xi)];
  });
  for (size_t i = 0; i < ny; ++i) gb[i / size_t(ref.Ho * ref.Wo) % size_t(s.C_out)] += gy[i];

  const auto xt = cast<T>(x), wt = cast<T>(w), bt = cast<T>(b), gyt = cast<T>(gy);
  // NaN-filled outputs: every kernel must overwrite all of its output.
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> yo(ny, nan), gxo(nx, nan), gwo(nw, nan), gbo(size_t(s.C_out), nan);
  conv2d_forward<T>(s, xt.data(), wt.data(), bias ? bt.data() : nullptr, yo.data());
  conv2d_backward_input<T>(s, gyt.data(), wt.data(), gxo.data());
  conv2d_backward_weight<T>(s, gyt.data(), xt.data(), gwo.data());
  conv2d_backward_bias<T>(s, gyt.data(), gbo.data());
  EXPECT_TRUE(near(yo, y, tol, "y"));
  EXPECT_TRUE(near(gxo, gx, tol, "gx"));
  EXPECT_TRUE(near(gwo, gw, tol, "gw"));
  EXPECT_TRUE(near(gbo, gb, tol, "gb"));
}

Conv2dShape shape(int64_t N, int64_t C_in, int64_t H, int64_t W, int64_t C_out, int64_t kH,
                  int64_t kW) {
  Conv2dShape s;
  s.N = N, s.C_in = C_in, s.H = H, s.W = W, s.C_out = C_out, s.kH = kH, s.kW = kW;
  return s;
}

void check_all(const std::vector<Conv2dShape>& shapes, Conv2dPath path) {
  const int before = num_threads();
  for (const Conv2dShape& s : shapes) {
    SCOPED_TRACE(str(s));
#if defined(__AVX512F__)
    EXPECT_EQ(conv2d_path_name(conv2d_path(s)), std::string(conv2d_path_name(path)));
#endif
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(std::to_string(threads) + " threads");
      set_num_threads(threads);
      for (bool bias : {true, false}) {
        check_against_naive<float>(s, bias, 2e-5);
        check_against_naive<double>(s, bias, 1e-12);
      }
    }
  }
  set_num_threads(before);
}

}  // namespace

// 1x1 kernels and kernels as tall as the input: the image is its own column matrix.
TEST(ConvKernels, ColumnsPath) {
  std::vector<Conv2dShape> shapes;
  for (int64_t P : {1, 15, 16, 17, 33})
    for (int64_t N : {1, 3}) {
      shapes.push_back(shape(N, 3, 1, P, 7, 1, 1));   // 1x1 over one row
      shapes.push_back(shape(N, 5, 5, P, 9, 5, 1));   // full height
    }
  shapes.push_back(shape(2, 5, 3, 11, 17, 1, 1));     // 1x1 over 3 rows: P = 33
  shapes.push_back(shape(3, 7, 20, 17, 50, 20, 1));   // K = 140: chunks of K, 50 > 48 columns
  shapes.push_back(shape(2, 1, 1, 16, 1, 1, 1));      // one channel in and out
  Conv2dShape strided = shape(2, 3, 6, 17, 9, 6, 1);  // full height: stride_h changes nothing
  strided.stride_h = 3;
  shapes.push_back(strided);
  Conv2dShape dilated = shape(2, 3, 4, 17, 5, 1, 1);  // 1x1: dilation changes nothing
  dilated.dil_h = 2, dilated.dil_w = 3;
  shapes.push_back(dilated);
  check_all(shapes, Conv2dPath::columns);
}

// Few input rows per output row, taps sliding along W.
TEST(ConvKernels, RowsPath) {
  std::vector<Conv2dShape> shapes;
  for (int64_t Wo : {1, 15, 16, 17, 33})
    for (int64_t N : {1, 3}) {
      shapes.push_back(shape(N, 1, 3, Wo + 24, 9, 1, 25));  // TSConv's temporal kernel
      shapes.push_back(shape(N, 1, 2, Wo + 3, 17, 1, 4));
    }
  shapes.push_back(shape(2, 1, 2, 60, 3, 1, 40));  // 40 taps: two blocks of columns in gw
  shapes.push_back(shape(2, 3, 4, 20, 5, 2, 3));   // several input rows
  Conv2dShape padded = shape(2, 2, 5, 19, 7, 3, 5);
  padded.pad_h = 1, padded.stride_h = 2, padded.dil_h = 2;
  shapes.push_back(padded);
  Conv2dShape outside = shape(1, 3, 3, 18, 5, 2, 2);  // oh = 0 reads only padding rows
  outside.pad_h = 2;
  shapes.push_back(outside);
  for (int64_t W : {1, 9, 17, 30}) {  // padding along W, as EEGNet's temporal kernel (1, 64)
    Conv2dShape padded_w = shape(2, 1, 2, W, 9, 1, 8);
    padded_w.pad_w = 4;
    shapes.push_back(padded_w);
  }
  Conv2dShape padded_both = shape(3, 2, 4, 13, 5, 3, 4);
  padded_both.pad_h = 1, padded_both.pad_w = 3, padded_both.stride_h = 2;
  shapes.push_back(padded_both);
  check_all(shapes, Conv2dPath::rows);
}

// One GEMM over the batch with the column matrix packed from the input: the ResNet's 3x3
// kernels. Output channels on either side of the register tiles' rows (12, and 8 for the
// short tile, with AVX-512) and past a block of rows (84 and 80 rows), positions that put a
// panel across two images (7 x 7 images, panels of 32 columns), 31 to 33
// columns in all, K one below, at and above the k block (1024), more panels than one packed
// block holds, every tap in the padding for some rows and columns, stride and dilation along
// H, dilation along W.
TEST(ConvKernels, ImplicitGemmPath) {
  std::vector<Conv2dShape> shapes;
  auto padded = [](Conv2dShape s, int64_t ph, int64_t pw) {
    s.pad_h = ph, s.pad_w = pw;
    return s;
  };
  // 1, 13, 25, 32, 64 and 85 channels take the short tile (8 rows), 11, 12 and 96 the full one.
  for (int64_t C_out : {1, 11, 12, 13, 25, 32, 64, 85, 96})
    shapes.push_back(padded(shape(3, 4, 7, 7, C_out, 3, 3), 1, 1));
  shapes.push_back(padded(shape(1, 3, 30, 31, 200, 3, 3), 1, 1));  // 200: rows past a row block
  shapes.push_back(shape(2, 3, 5, 9, 4, 3, 3));  // C_in * kH = 9 rows: too many for "rows"
  for (int64_t W : {31, 32, 33}) shapes.push_back(padded(shape(1, 9, 1, W, 5, 1, 3), 0, 1));
  shapes.push_back(padded(shape(1, 341, 5, 6, 13, 3, 1), 1, 0));  // K = 1023
  shapes.push_back(padded(shape(1, 256, 4, 5, 13, 2, 2), 0, 1));  // K = 1024
  shapes.push_back(padded(shape(1, 342, 5, 6, 13, 3, 1), 1, 0));  // K = 1026
  shapes.push_back(padded(shape(2, 3, 50, 50, 4, 3, 3), 1, 1));   // 5000 columns, K = 27
  Conv2dShape strided = padded(shape(2, 3, 11, 10, 7, 3, 3), 1, 1);
  strided.stride_h = 2, strided.dil_h = 2;
  shapes.push_back(strided);
  Conv2dShape dilated_w = shape(2, 1, 3, 20, 5, 1, 5);  // dilation along W
  dilated_w.dil_w = 2;
  shapes.push_back(dilated_w);
  shapes.push_back(shape(1, 2, 1, 600, 3, 1, 1));   // 1x1 with rows too long for "columns"
  shapes.push_back(shape(1, 2, 3, 513, 3, 3, 1));   // full height, likewise
  shapes.push_back(shape(3, 70, 7, 7, 65, 1, 1));   // 1x1 with more channels than "columns"
  check_all(shapes, Conv2dPath::implicit_gemm);
}

// The same path with each micro-kernel this CPU runs (their tiles differ: the packed panels
// take the kernel's width), with stride along W, which the dispatcher sends elsewhere but the
// path computes one element at a time, and with output rows too narrow for the dispatcher.
TEST(ConvKernels, ImplicitGemmEveryKernelAndStrideW) {
  Conv2dShape square = shape(3, 5, 7, 7, 13, 3, 3);
  square.pad_h = square.pad_w = 1;
  Conv2dShape strided_w = shape(2, 3, 9, 20, 6, 3, 3);
  strided_w.stride_w = 2, strided_w.pad_w = 2, strided_w.dil_w = 2;
  // W = 1 with padding 2: output rows of 3, so a vector spans up to 6 rows (the general slot
  // loop), and most taps fall in the padding. The dispatcher sends such rows elsewhere.
  Conv2dShape narrow = shape(2, 3, 3, 1, 3, 3, 3);
  narrow.pad_h = narrow.pad_w = 2;
  const int before = num_threads();
  for (GemmIsa isa : {GemmIsa::generic, GemmIsa::avx2, GemmIsa::avx512}) {
    if (!gemm_isa_supported(isa)) continue;
    SCOPED_TRACE(gemm_isa_name(isa));
    set_gemm_isa_for_testing(isa);
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (const Conv2dShape& s : {square, strided_w, narrow}) {
        SCOPED_TRACE(str(s));
        const Naive ref(s);
        const auto x = random_values(size_t(s.N * s.C_in * s.H * s.W), 1);
        const auto w = random_values(size_t(s.C_out * s.C_in * s.kH * s.kW), 2);
        const auto b = random_values(size_t(s.C_out), 3);
        const size_t ny = size_t(s.N * s.C_out * ref.Ho * ref.Wo);
        std::vector<double> want(ny);
        for (size_t i = 0; i < ny; ++i) want[i] = b[i / size_t(ref.Ho * ref.Wo) % size_t(s.C_out)];
        ref.for_each_term([&](int64_t xi, int64_t wi, int64_t yi) {
          want[size_t(yi)] += x[size_t(xi)] * w[size_t(wi)];
        });
        const auto xf = cast<float>(x), wf = cast<float>(w), bf = cast<float>(b);
        std::vector<float> yf(ny, std::numeric_limits<float>::quiet_NaN());
        ConvEpilogue<float> ep_f;
        ep_f.shift = bf.data();
        conv_detail::implicit_gemm_forward<float>(s, xf.data(), wf.data(), ep_f, yf.data());
        EXPECT_TRUE(near(yf, want, 2e-5, "y float"));
        std::vector<double> yd(ny, std::numeric_limits<double>::quiet_NaN());
        ConvEpilogue<double> ep_d;
        ep_d.shift = b.data();
        conv_detail::implicit_gemm_forward<double>(s, x.data(), w.data(), ep_d, yd.data());
        EXPECT_TRUE(near(yd, want, 1e-12, "y double"));
      }
    }
  }
  reset_gemm_isa();
  set_num_threads(before);
}

// The epilogue (a per-channel scale and shift, a residual, a ReLU; each part on its own and all
// together) on every path: applied to the tiles on the implicit GEMM path, after the
// convolution on the others. Half the outputs are negative before the ReLU.
TEST(ConvKernels, EpilogueOnEveryPath) {
  Conv2dShape implicit = shape(3, 4, 7, 7, 13, 3, 3);
  implicit.pad_h = implicit.pad_w = 1;
  Conv2dShape depthwise = shape(2, 3, 4, 17, 6, 1, 5);
  depthwise.groups = 3;
  const std::vector<std::pair<Conv2dShape, Conv2dPath>> cases = {
      {implicit, Conv2dPath::implicit_gemm},
      {shape(2, 5, 3, 11, 17, 1, 1), Conv2dPath::columns},
      {shape(2, 1, 3, 30, 2, 1, 25), Conv2dPath::rows},
      {[] {
         Conv2dShape strided_w = shape(2, 3, 3, 20, 4, 3, 3);  // stride along W
         strided_w.stride_w = 2;
         return strided_w;
       }(),
       Conv2dPath::generic},
      {depthwise, Conv2dPath::depthwise}};
  const int before = num_threads();
  for (const auto& [s, path] : cases) {
    SCOPED_TRACE(str(s));
#if defined(__AVX512F__)
    EXPECT_EQ(conv2d_path_name(conv2d_path(s)), std::string(conv2d_path_name(path)));
#endif
    const Naive ref(s);
    const auto x = random_values(size_t(s.N * s.C_in * s.H * s.W), 1);
    const auto w = random_values(size_t(s.C_out * (s.C_in / s.groups) * s.kH * s.kW), 2);
    const size_t ny = size_t(s.N * s.C_out * ref.Ho * ref.Wo), P = size_t(ref.Ho * ref.Wo);
    const auto scale = random_values(size_t(s.C_out), 3), shift = random_values(size_t(s.C_out), 4);
    const auto residual = random_values(ny, 5);
    std::vector<double> sum(ny, 0);
    ref.for_each_term([&](int64_t xi, int64_t wi, int64_t yi) { sum[size_t(yi)] += x[size_t(xi)] * w[size_t(wi)]; });
    const auto xf = cast<float>(x), wf = cast<float>(w), sf = cast<float>(scale),
               hf = cast<float>(shift), rf = cast<float>(residual);
    for (int parts = 1; parts < 16; ++parts) {  // bits: scale, shift, residual, relu
      SCOPED_TRACE("epilogue parts " + std::to_string(parts));
      ConvEpilogue<float> ep;
      if (parts & 1) ep.scale = sf.data();
      if (parts & 2) ep.shift = hf.data();
      if (parts & 4) ep.residual = rf.data();
      ep.relu = (parts & 8) != 0;
      std::vector<double> want(ny);
      for (size_t i = 0; i < ny; ++i) {
        const size_t c = i / P % size_t(s.C_out);
        double v = sum[i] * (ep.scale ? scale[c] : 1.0) + (ep.shift ? shift[c] : 0.0);
        if (ep.residual) v += residual[i];
        want[i] = ep.relu ? std::max(v, 0.0) : v;
      }
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        std::vector<float> y(ny, std::numeric_limits<float>::quiet_NaN());
        conv2d_forward<float>(s, xf.data(), wf.data(), ep, y.data());
        EXPECT_TRUE(near(y, want, 2e-5, "y"));
      }
    }
  }
  set_num_threads(before);
}

// The other paths, as references for the shapes next to the direct paths' borders.
TEST(ConvKernels, GenericAndDepthwisePaths) {
  std::vector<Conv2dShape> generic;
  Conv2dShape strided_w = shape(2, 1, 3, 20, 5, 1, 5);  // stride along W
  strided_w.stride_w = 2;
  generic.push_back(strided_w);
  Conv2dShape grouped = shape(2, 4, 1, 17, 6, 1, 1);
  grouped.groups = 2;
  generic.push_back(grouped);
  check_all(generic, Conv2dPath::generic);

  Conv2dShape depthwise = shape(2, 3, 4, 17, 6, 1, 5);
  depthwise.groups = 3;
  check_all({depthwise}, Conv2dPath::depthwise);
}
