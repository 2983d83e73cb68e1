// Pooling kernels: one thread per output forward, one thread per input element backward (it
// walks the few outputs whose windows cover it, in the CPU's order of outputs).
#include "kernels/cuda/pool.h"

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// An averaging window clipped to the input, and what its sum is divided by (as the CPU's).
struct AvgWindow {
  int64_t h0, h1, w0, w1, divisor;
};

__device__ AvgWindow avg_window(const Pool2dShape& s, bool count_include_pad, int64_t oh,
                                int64_t ow) {
  int64_t h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
  int64_t h1 = min(h0 + s.kH, s.H + s.pad_h), w1 = min(w0 + s.kW, s.W + s.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  h0 = max(h0, int64_t(0)), w0 = max(w0, int64_t(0));
  h1 = min(h1, s.H), w1 = min(w1, s.W);
  const int64_t real_size = max(int64_t(0), h1 - h0) * max(int64_t(0), w1 - w0);
  return {h0, h1, w0, w1, count_include_pad ? padded_size : real_size};
}

// The outputs o in [lo, hi) along one axis whose window [o * stride - pad, + kernel) holds i.
__device__ void covering(int64_t i, int64_t kernel, int64_t stride, int64_t pad, int64_t n_out,
                         int64_t* lo, int64_t* hi) {
  const int64_t t = i + pad;  // o * stride <= t < o * stride + kernel
  *lo = t - kernel + 1 <= 0 ? 0 : (t - kernel + 1 + stride - 1) / stride;
  *hi = min(n_out, t / stride + 1);
}

template <class T>
__global__ void avg_forward_kernel(Pool2dShape s, bool count_include_pad, const T* x, T* y) {
  const int64_t out = s.H_out * s.W_out, total = s.planes * out;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t p = i / out, o = i - p * out, oh = o / s.W_out, ow = o - oh * s.W_out;
    const AvgWindow win = avg_window(s, count_include_pad, oh, ow);
    const T* xp = x + p * s.H * s.W;
    T acc = T(0);
    for (int64_t h = win.h0; h < win.h1; ++h)
      for (int64_t w = win.w0; w < win.w1; ++w) acc += xp[h * s.W + w];
    y[i] = win.divisor > 0 ? acc / T(win.divisor) : T(0);
  }
}

template <class T>
__global__ void avg_backward_kernel(Pool2dShape s, bool count_include_pad, const T* gy, T* gx) {
  const int64_t HW = s.H * s.W, total = s.planes * HW;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t p = i / HW, q = i - p * HW, ih = q / s.W, iw = q - ih * s.W;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, s.kH, s.stride_h, s.pad_h, s.H_out, &oh0, &oh1);
    covering(iw, s.kW, s.stride_w, s.pad_w, s.W_out, &ow0, &ow1);
    const T* gyp = gy + p * s.H_out * s.W_out;
    T acc = T(0);
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const AvgWindow win = avg_window(s, count_include_pad, oh, ow);
        if (win.divisor > 0) acc += gyp[oh * s.W_out + ow] / T(win.divisor);
      }
    gx[i] = acc;
  }
}

// The first valid tap of a dilated window starting at `start` (may be in the padding).
__device__ int64_t first_tap(int64_t start, int64_t dilation) {
  return start >= 0 ? start : start + ((-start + dilation - 1) / dilation) * dilation;
}

template <class T>
__global__ void max_forward_kernel(Pool2dShape s, const T* x, T* y, int64_t* argmax) {
  const int64_t out = s.H_out * s.W_out, total = s.planes * out;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t p = i / out, o = i - p * out, oh = o / s.W_out, ow = o - oh * s.W_out;
    const int64_t h_start = oh * s.stride_h - s.pad_h, w_start = ow * s.stride_w - s.pad_w;
    const int64_t h0 = first_tap(h_start, s.dil_h), w0 = first_tap(w_start, s.dil_w);
    const int64_t h1 = min(h_start + (s.kH - 1) * s.dil_h + 1, s.H);
    const int64_t w1 = min(w_start + (s.kW - 1) * s.dil_w + 1, s.W);
    const T* xp = x + p * s.H * s.W;
    T best = -d_inf<T>();
    int64_t at = -1;
    for (int64_t h = h0; h < h1; h += s.dil_h)
      for (int64_t w = w0; w < w1; w += s.dil_w) {
        const T v = xp[h * s.W + w];
        // As the CPU's rule: a NaN wins (the last one seen), a tie keeps the first.
        if (at < 0 || v > best || isnan(v)) {
          best = v;
          at = h * s.W + w;
        }
      }
    y[i] = best;
    argmax[i] = at;
  }
}

// Input (ih, iw) is tap k of output o along an axis when o * stride - pad + k * dilation = i.
// Taps are walked from the last to the first, so the outputs come in increasing order.
template <class T>
__global__ void max_backward_kernel(Pool2dShape s, const T* gy, const int64_t* argmax, T* gx) {
  const int64_t HW = s.H * s.W, out = s.H_out * s.W_out, total = s.planes * HW;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t p = i / HW, q = i - p * HW, ih = q / s.W, iw = q - ih * s.W;
    const T* gyp = gy + p * out;
    const int64_t* amp = argmax + p * out;
    T acc = T(0);
    for (int64_t kh = s.kH - 1; kh >= 0; --kh) {
      const int64_t th = ih + s.pad_h - kh * s.dil_h;
      if (th < 0 || th % s.stride_h != 0 || th / s.stride_h >= s.H_out) continue;
      const int64_t oh = th / s.stride_h;
      for (int64_t kw = s.kW - 1; kw >= 0; --kw) {
        const int64_t tw = iw + s.pad_w - kw * s.dil_w;
        if (tw < 0 || tw % s.stride_w != 0 || tw / s.stride_w >= s.W_out) continue;
        const int64_t o = oh * s.W_out + tw / s.stride_w;
        if (amp[o] == q) acc += gyp[o];
      }
    }
    gx[i] = acc;
  }
}

__device__ int64_t cell_begin(int64_t o, int64_t n_in, int64_t n_out) { return (o * n_in) / n_out; }
__device__ int64_t cell_end(int64_t o, int64_t n_in, int64_t n_out) {
  return ((o + 1) * n_in + n_out - 1) / n_out;
}

template <class T>
__global__ void adaptive_forward_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho,
                                        int64_t Wo, const T* x, T* y) {
  const int64_t out = Ho * Wo, total = planes * out;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t p = i / out, o = i - p * out, oh = o / Wo, ow = o - oh * Wo;
    const int64_t h0 = cell_begin(oh, H, Ho), h1 = cell_end(oh, H, Ho);
    const int64_t w0 = cell_begin(ow, W, Wo), w1 = cell_end(ow, W, Wo);
    const T* xp = x + p * H * W;
    T acc = T(0);
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) acc += xp[h * W + w];
    y[i] = acc / T((h1 - h0) * (w1 - w0));
  }
}

template <class T>
__global__ void adaptive_backward_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho,
                                         int64_t Wo, const T* gy, T* gx) {
  const int64_t HW = H * W, total = planes * HW;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t p = i / HW, q = i - p * HW, ih = q / W, iw = q - ih * W;
    // Cells holding ih lie in [ih * Ho / H, ceil((ih + 1) * Ho / H)); checked one by one.
    const int64_t oh0 = (ih * Ho) / H, oh1 = min(Ho, ((ih + 1) * Ho + H - 1) / H);
    const int64_t ow0 = (iw * Wo) / W, ow1 = min(Wo, ((iw + 1) * Wo + W - 1) / W);
    const T* gyp = gy + p * Ho * Wo;
    T acc = T(0);
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t h0 = cell_begin(oh, H, Ho), h1 = cell_end(oh, H, Ho);
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t w0 = cell_begin(ow, W, Wo), w1 = cell_end(ow, W, Wo);
        if (iw < w0 || iw >= w1) continue;
        acc += gyp[oh * Wo + ow] / T((h1 - h0) * (w1 - w0));
      }
    }
    gx[i] = acc;
  }
}

}  // namespace

template <class T>
Status avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, const T* x, T* y,
                          cudaStream_t stream) {
  const int64_t total = s.planes * s.H_out * s.W_out;
  if (total == 0) return ok_status();
  avg_forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(s, count_include_pad, x, y);
  return launch_status("avg_forward_kernel");
}

template <class T>
Status avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const T* gy, T* gx,
                           cudaStream_t stream) {
  const int64_t total = s.planes * s.H * s.W;
  if (total == 0) return ok_status();
  avg_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(s, count_include_pad, gy, gx);
  return launch_status("avg_backward_kernel");
}

template <class T>
Status max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int64_t* argmax,
                          cudaStream_t stream) {
  const int64_t total = s.planes * s.H_out * s.W_out;
  if (total == 0) return ok_status();
  max_forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(s, x, y, argmax);
  return launch_status("max_forward_kernel");
}

template <class T>
Status max_pool2d_backward(const Pool2dShape& s, const T* gy, const int64_t* argmax, T* gx,
                           cudaStream_t stream) {
  const int64_t total = s.planes * s.H * s.W;
  if (total == 0) return ok_status();
  max_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(s, gy, argmax, gx);
  return launch_status("max_backward_kernel");
}

template <class T>
Status adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                   int64_t W_out, const T* x, T* y, cudaStream_t stream) {
  const int64_t total = planes * H_out * W_out;
  if (total == 0) return ok_status();
  adaptive_forward_kernel<T>
      <<<blocks_for(total), kThreads, 0, stream>>>(planes, H, W, H_out, W_out, x, y);
  return launch_status("adaptive_forward_kernel");
}

template <class T>
Status adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t H_out,
                                    int64_t W_out, const T* gy, T* gx, cudaStream_t stream) {
  const int64_t total = planes * H * W;
  if (total == 0) return ok_status();
  adaptive_backward_kernel<T>
      <<<blocks_for(total), kThreads, 0, stream>>>(planes, H, W, H_out, W_out, gy, gx);
  return launch_status("adaptive_backward_kernel");
}

#define SH_INSTANTIATE(T)                                                                        \
  template Status avg_pool2d_forward<T>(const Pool2dShape&, bool, const T*, T*, cudaStream_t);  \
  template Status avg_pool2d_backward<T>(const Pool2dShape&, bool, const T*, T*, cudaStream_t); \
  template Status max_pool2d_forward<T>(const Pool2dShape&, const T*, T*, int64_t*,             \
                                        cudaStream_t);                                          \
  template Status max_pool2d_backward<T>(const Pool2dShape&, const T*, const int64_t*, T*,      \
                                         cudaStream_t);                                         \
  template Status adaptive_avg_pool2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                                 const T*, T*, cudaStream_t);                   \
  template Status adaptive_avg_pool2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                                  const T*, T*, cudaStream_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cuda
