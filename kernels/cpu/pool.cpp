#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {

// Threads split the planes; windows overlap only inside a plane, so the backward's
// scatter-adds never race.
template <class Fn>
void for_each_plane(int64_t planes, int64_t work_per_plane, Fn fn) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, work_per_plane));
  parallel_for(0, planes, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) fn(p);
  });
}

// An averaging window clipped to the input, and what its sum is divided by.
struct AvgWindow {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};

AvgWindow avg_window(const Pool2dShape& s, bool count_include_pad, int64_t oh, int64_t ow) {
  int64_t h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
  int64_t h1 = std::min(h0 + s.kH, s.H + s.pad_h), w1 = std::min(w0 + s.kW, s.W + s.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, s.H), w1 = std::min(w1, s.W);
  const int64_t real_size = std::max<int64_t>(0, h1 - h0) * std::max<int64_t>(0, w1 - w0);
  return {h0, h1, w0, w1, count_include_pad ? padded_size : real_size};
}

// The first valid tap of a dilated window starting at `start` (may be in the padding).
int64_t first_tap(int64_t start, int64_t dilation) {
  return start >= 0 ? start : start + ((-start + dilation - 1) / dilation) * dilation;
}

int64_t cell_begin(int64_t o, int64_t n_in, int64_t n_out) { return (o * n_in) / n_out; }
int64_t cell_end(int64_t o, int64_t n_in, int64_t n_out) {
  return ((o + 1) * n_in + n_out - 1) / n_out;
}

// A row of 2x2 averages from input rows r0 and r1, summed in the general loop's order (from
// zero, row by row, left to right), so that both give the same bits; in a function of its own,
// where GCC vectorizes it.
template <class T>
void average_2x2_row(const T* r0, const T* r1, int64_t w_out, T* out) {
  for (int64_t ow = 0; ow < w_out; ++ow)
    out[ow] = ((((T(0) + r0[2 * ow]) + r0[2 * ow + 1]) + r1[2 * ow]) + r1[2 * ow + 1]) / T(4);
}

// 2x2 windows with stride 2 that all lie inside the input (a ResNet's striding by average):
// no clipping and no padding to account for.
bool whole_2x2_windows(const Pool2dShape& s) {
  return s.kH == 2 && s.kW == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 &&
         s.pad_w == 0 && 2 * s.H_out <= s.H && 2 * s.W_out <= s.W;
}

}  // namespace

template <class T>
void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, const T* x, T* y) {
  const int64_t HW = s.H * s.W, out = s.H_out * s.W_out;
  if (whole_2x2_windows(s)) {
    for_each_plane(s.planes, HW, [&](int64_t p) {
      for (int64_t oh = 0; oh < s.H_out; ++oh) {
        const T* r0 = x + p * HW + 2 * oh * s.W;
        average_2x2_row(r0, r0 + s.W, s.W_out, y + p * out + oh * s.W_out);
      }
    });
    return;
  }
  for_each_plane(s.planes, out * s.kH * s.kW, [&](int64_t p) {
    const T* xp = x + p * HW;
    T* yp = y + p * out;
    for (int64_t oh = 0; oh < s.H_out; ++oh)
      for (int64_t ow = 0; ow < s.W_out; ++ow) {
        const AvgWindow win = avg_window(s, count_include_pad, oh, ow);
        T acc = 0;
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) acc += xp[h * s.W + w];
        yp[oh * s.W_out + ow] = win.divisor > 0 ? acc / T(win.divisor) : T(0);
      }
  });
}

template <class T>
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const T* gy, T* gx) {
  const int64_t HW = s.H * s.W, out = s.H_out * s.W_out;
  for_each_plane(s.planes, out * s.kH * s.kW, [&](int64_t p) {
    const T* gyp = gy + p * out;
    T* gxp = gx + p * HW;
    std::fill(gxp, gxp + HW, T(0));
    for (int64_t oh = 0; oh < s.H_out; ++oh)
      for (int64_t ow = 0; ow < s.W_out; ++ow) {
        const AvgWindow win = avg_window(s, count_include_pad, oh, ow);
        if (win.divisor <= 0) continue;
        const T share = gyp[oh * s.W_out + ow] / T(win.divisor);
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) gxp[h * s.W + w] += share;
      }
  });
}

template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int64_t* argmax) {
  const int64_t HW = s.H * s.W, out = s.H_out * s.W_out;
  for_each_plane(s.planes, out * s.kH * s.kW, [&](int64_t p) {
    const T* xp = x + p * HW;
    for (int64_t oh = 0; oh < s.H_out; ++oh) {
      const int64_t h_start = oh * s.stride_h - s.pad_h;
      const int64_t h0 = first_tap(h_start, s.dil_h);
      const int64_t h1 = std::min(h_start + (s.kH - 1) * s.dil_h + 1, s.H);
      for (int64_t ow = 0; ow < s.W_out; ++ow) {
        const int64_t w_start = ow * s.stride_w - s.pad_w;
        const int64_t w0 = first_tap(w_start, s.dil_w);
        const int64_t w1 = std::min(w_start + (s.kW - 1) * s.dil_w + 1, s.W);
        T best = -std::numeric_limits<T>::infinity();
        int64_t at = -1;  // stays -1 only for a window with no input element
        for (int64_t h = h0; h < h1; h += s.dil_h)
          for (int64_t w = w0; w < w1; w += s.dil_w) {
            const T v = xp[h * s.W + w];
            // A NaN wins and stays, as in PyTorch; a tie keeps the first.
            if (at < 0 || v > best || std::isnan(v)) {
              best = v;
              at = h * s.W + w;
            }
          }
        y[p * out + oh * s.W_out + ow] = best;
        argmax[p * out + oh * s.W_out + ow] = at;
      }
    }
  });
}

template <class T>
void max_pool2d_backward(const Pool2dShape& s, const T* gy, const int64_t* argmax, T* gx) {
  const int64_t HW = s.H * s.W, out = s.H_out * s.W_out;
  for_each_plane(s.planes, out + HW, [&](int64_t p) {
    T* gxp = gx + p * HW;
    std::fill(gxp, gxp + HW, T(0));
    for (int64_t o = 0; o < out; ++o) {
      const int64_t at = argmax[p * out + o];
      if (at >= 0) gxp[at] += gy[p * out + o];
    }
  });
}

template <class T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                 int64_t W_out, const T* x, T* y) {
  for_each_plane(planes, H * W + H_out * W_out, [&](int64_t p) {
    const T* xp = x + p * H * W;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t h0 = cell_begin(oh, H, H_out), h1 = cell_end(oh, H, H_out);
      for (int64_t ow = 0; ow < W_out; ++ow) {
        const int64_t w0 = cell_begin(ow, W, W_out), w1 = cell_end(ow, W, W_out);
        T acc = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) acc += xp[h * W + w];
        y[(p * H_out + oh) * W_out + ow] = acc / T((h1 - h0) * (w1 - w0));
      }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                  int64_t W_out, const T* gy, T* gx) {
  for_each_plane(planes, H * W + H_out * W_out, [&](int64_t p) {
    T* gxp = gx + p * H * W;
    std::fill(gxp, gxp + H * W, T(0));
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t h0 = cell_begin(oh, H, H_out), h1 = cell_end(oh, H, H_out);
      for (int64_t ow = 0; ow < W_out; ++ow) {
        const int64_t w0 = cell_begin(ow, W, W_out), w1 = cell_end(ow, W, W_out);
        const T share = gy[(p * H_out + oh) * W_out + ow] / T((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) gxp[h * W + w] += share;
      }
    }
  });
}

#define SH_INSTANTIATE(T)                                                                    \
  template void avg_pool2d_forward<T>(const Pool2dShape&, bool, const T*, T*);              \
  template void avg_pool2d_backward<T>(const Pool2dShape&, bool, const T*, T*);             \
  template void max_pool2d_forward<T>(const Pool2dShape&, const T*, T*, int64_t*);          \
  template void max_pool2d_backward<T>(const Pool2dShape&, const T*, const int64_t*, T*);   \
  template void adaptive_avg_pool2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t, \
                                               const T*, T*);                               \
  template void adaptive_avg_pool2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t, \
                                                const T*, T*);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cpu
