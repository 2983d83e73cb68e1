// Implicit-GEMM convolution kernels (see conv.h for the three GEMMs) and the direct depthwise
// kernels.
#include "kernels/cuda/conv.h"

#include <algorithm>
#include <climits>
#include <string>

#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// What products are summed in: double for double, float for float and bf16 (bf16 values are
// widened as they are loaded, and rounded once when stored).
template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// ---- geometry

// The shape with per-image sizes in 32-bit ints (the host checks they fit): index arithmetic
// inside an image stays cheap, and only image offsets need 64 bits.
struct Geom {
  int64_t N;
  int C_in, H, W, C_out, kH, kW, sh, sw, ph, pw, dh, dw, groups;
  int Cg, Cog, Ho, Wo, P, HW, taps;
};

bool fits_int(int64_t v) { return v >= 0 && v < INT_MAX; }

// Every per-image and per-filter extent below 2^31 (the grids are checked at launch).
Status make_geom(const Conv2dShape& s, Geom* g) {
  const int64_t Ho = s.H_out(), Wo = s.W_out();
  const int64_t taps = s.kH * s.kW;
  const int64_t Cg = s.C_in / s.groups, Cog = s.C_out / s.groups;
  if (!fits_int(s.C_in * s.H * s.W) || !fits_int(s.C_out * Ho * Wo) ||
      !fits_int(s.C_out * Cg * taps) || !fits_int(s.groups * Cog * taps) ||
      !fits_int(s.pad_h + s.H) || !fits_int(s.pad_w + s.W) || !fits_int(s.dil_h * s.kH) ||
      !fits_int(s.dil_w * s.kW) || !fits_int(s.stride_h * Ho) || !fits_int(s.stride_w * Wo))
    return Status{"conv2d", "an image or filter of this size (2^31 elements or more) is not supported"};
  *g = Geom{s.N,         int(s.C_in),     int(s.H),     int(s.W),       int(s.C_out),
            int(s.kH),   int(s.kW),       int(s.stride_h), int(s.stride_w), int(s.pad_h),
            int(s.pad_w), int(s.dil_h),   int(s.dil_w), int(s.groups),  int(Cg),
            int(Cog),    int(Ho),         int(Wo),      int(Ho * Wo),   int(s.H * s.W),
            int(taps)};
  return ok_status();
}

// How many blocks share a reduction of `length` items when `tiles` blocks already exist
// without splitting: enough for about four blocks per multiprocessor, each with at least
// `min_per_split` items, and within a grid dimension's limit.
int64_t reduction_splits(int64_t length, int64_t tiles, int64_t min_per_split) {
  const int64_t want = (4 * int64_t(multiprocessors()) + tiles - 1) / std::max<int64_t>(tiles, 1);
  const int64_t most = std::max<int64_t>(1, length / min_per_split);
  return std::clamp<int64_t>(std::min(want, most), 1, 65535);
}

Status too_large(const char* what) {
  return Status{std::string("conv2d ") + what, "the grid would exceed CUDA's limits for this shape"};
}

// ---- the tiled product shared by the forward and the input gradient

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kTileThreads = 256;
// Thread t owns the outputs (m0 + tx + 16 i, n0 + ty + 16 j), i, j < 4, with tx = t % 16 and
// ty = t / 16: a half-warp stores 16 consecutive rows (consecutive pixels: coalesced), and
// reads shared memory without bank conflicts.

// Depth index k of both products, decomposed into (channel, kh, kw) once per tile slice and
// shared by the block: offset = the channel's offset in the gathered array (-1 past the depth),
// dh/dw = the tap's dilated offsets.
struct Tap {
  int offset, dh, dw;
};

// Forward: row m = (image, output pixel), column n = output channel in the group,
// depth k = (input channel in the group, kh, kw).
template <class T>
struct ForwardGemm {
  using Acc = acc_t<T>;
  Geom g;
  const T* x;
  const T* w;
  const T* b;
  T* y;

  __device__ int64_t rows() const { return g.N * g.P; }
  __device__ int cols() const { return g.Cog; }
  __device__ int depth() const { return g.Cg * g.taps; }

  struct Row {
    const T* image;  // the group's first input channel of this row's image
    int h0, w0;      // top-left corner of the window, padding included
  };
  __device__ Row row(int64_t m, int group) const {
    if (m >= rows()) return {nullptr, 0, 0};
    const int64_t img = m / g.P;
    const int p = int(m - img * g.P), oh = p / g.Wo, ow = p - oh * g.Wo;
    return {x + (img * g.C_in + int64_t(group) * g.Cg) * g.HW, oh * g.sh - g.ph, ow * g.sw - g.pw};
  }
  __device__ Tap tap(int k) const {
    if (k >= depth()) return {-1, 0, 0};
    const int ci = k / g.taps, t = k - ci * g.taps, kh = t / g.kW, kw = t - kh * g.kW;
    return {ci * g.HW, kh * g.dh, kw * g.dw};
  }
  __device__ Acc a(const Row& r, const Tap& t) const {
    if (!r.image || t.offset < 0) return Acc(0);
    const int ih = r.h0 + t.dh, iw = r.w0 + t.dw;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return Acc(0);
    return widen(r.image[int64_t(t.offset) + ih * g.W + iw]);
  }
  __device__ Acc b_at(int k, int n, int group) const {
    if (k >= depth() || n >= cols()) return Acc(0);
    return widen(w[(int64_t(group) * g.Cog + n) * depth() + k]);
  }
  __device__ void store(int64_t m, int n, int group, Acc v) const {
    const int64_t img = m / g.P;
    const int p = int(m - img * g.P), co = group * g.Cog + n;
    y[(img * g.C_out + co) * g.P + p] = convert<T>(b ? v + Acc(widen(b[co])) : v);
  }
};

// Input gradient: row m = (image, input pixel), column n = input channel in the group,
// depth k = (output channel in the group, kh, kw). The tap (kh, kw) reaches output
// (oh, ow) with oh * sh = ih + ph - kh * dh; taps that land between outputs (stride > 1) or
// outside them contribute zeros.
template <class T>
struct InputGradGemm {
  using Acc = acc_t<T>;
  Geom g;
  const T* gy;
  const T* w;
  T* gx;

  __device__ int64_t rows() const { return g.N * g.HW; }
  __device__ int cols() const { return g.Cg; }
  __device__ int depth() const { return g.Cog * g.taps; }

  struct Row {
    const T* grad;  // the group's first output channel of this row's image
    int h, w;       // input pixel plus padding
  };
  __device__ Row row(int64_t m, int group) const {
    if (m >= rows()) return {nullptr, 0, 0};
    const int64_t img = m / g.HW;
    const int p = int(m - img * g.HW), ih = p / g.W, iw = p - ih * g.W;
    return {gy + (img * g.C_out + int64_t(group) * g.Cog) * g.P, ih + g.ph, iw + g.pw};
  }
  __device__ Tap tap(int k) const {
    if (k >= depth()) return {-1, 0, 0};
    const int co = k / g.taps, t = k - co * g.taps, kh = t / g.kW, kw = t - kh * g.kW;
    return {co * g.P, kh * g.dh, kw * g.dw};
  }
  __device__ Acc a(const Row& r, const Tap& t) const {
    if (!r.grad || t.offset < 0) return Acc(0);
    const int th = r.h - t.dh, tw = r.w - t.dw;
    if (th < 0 || tw < 0 || th % g.sh != 0 || tw % g.sw != 0) return Acc(0);
    const int oh = th / g.sh, ow = tw / g.sw;
    if (oh >= g.Ho || ow >= g.Wo) return Acc(0);
    return widen(r.grad[int64_t(t.offset) + oh * g.Wo + ow]);
  }
  __device__ Acc b_at(int k, int n, int group) const {
    if (k >= depth() || n >= cols()) return Acc(0);
    const int co = k / g.taps, tap = k - co * g.taps;
    return widen(w[((int64_t(group) * g.Cog + co) * g.Cg + n) * g.taps + tap]);
  }
  __device__ void store(int64_t m, int n, int group, Acc v) const {
    const int64_t img = m / g.HW;
    const int p = int(m - img * g.HW);
    gx[(img * g.C_in + int64_t(group) * g.Cg + n) * g.HW + p] = convert<T>(v);
  }
};

// C = A B per group (blockIdx.z), A gathered by the problem's row()/a(), B by b_at().
template <class T, class Gemm>
__global__ void __launch_bounds__(kTileThreads) implicit_gemm_kernel(Gemm gemm) {
  using Acc = acc_t<T>;
  // One padding column: the B tile is written down its columns (k fastest across threads).
  __shared__ Acc As[kTileK][kTileM + 1];
  __shared__ Acc Bs[kTileK][kTileN + 1];
  __shared__ Tap taps[kTileK];  // the slice's depth indices, decomposed once for the block
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int group = blockIdx.z;
  const int64_t m0 = int64_t(blockIdx.x) * kTileM;
  const int n0 = blockIdx.y * kTileN;

  // Each thread gathers one tile row of A (fixed for the whole depth) at 4 depths per step,
  // and 4 columns of B at one depth.
  const int a_m = t % kTileM, a_k = t / kTileM;
  const auto row = gemm.row(m0 + a_m, group);
  const int b_k = t % kTileK, b_n = t / kTileK;

  Acc acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = Acc(0);

  const int depth = gemm.depth();
  for (int k0 = 0; k0 < depth; k0 += kTileK) {
    // Written after the previous slice's last barrier, read before this slice's second.
    if (t < kTileK) taps[t] = gemm.tap(k0 + t);
    __syncthreads();
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      As[a_k + 4 * j][a_m] = gemm.a(row, taps[a_k + 4 * j]);
      Bs[b_k][b_n + 16 * j] = gemm.b_at(k0 + b_k, n0 + b_n + 16 * j, group);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      Acc av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = As[kk][tx + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][ty + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }

  const int64_t rows = gemm.rows();
  const int cols = gemm.cols();
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + tx + 16 * i;
    if (m >= rows) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + ty + 16 * j;
      if (n < cols) gemm.store(m, n, group, acc[i][j]);
    }
  }
}

template <class T, class Gemm>
Status launch_implicit_gemm(const Gemm& gemm, int64_t rows, int64_t cols, int groups,
                            cudaStream_t stream, const char* what) {
  const int64_t grid_m = (rows + kTileM - 1) / kTileM, grid_n = (cols + kTileN - 1) / kTileN;
  if (grid_m > INT_MAX || grid_n > 65535 || groups > 65535) return too_large(what);
  const dim3 grid{unsigned(grid_m), unsigned(grid_n), unsigned(groups)};
  implicit_gemm_kernel<T, Gemm><<<grid, kTileThreads, 0, stream>>>(gemm);
  return launch_status(what);
}

// ---- weight gradient: a tiled product with the reduction split across blocks

// partial[split][co][k] = sum over r in the split's range of gy[img, co, p] * col[k][r], where
// r = (img, p) and col is the gathered input (k = (ci, kh, kw) of the group). Grid: x = split,
// y = (row tile, column tile), z = group.
template <class T>
__global__ void __launch_bounds__(kTileThreads)
    weight_grad_kernel(Geom g, const T* gy, const T* x, acc_t<T>* partial, int64_t per_split,
                       int col_tiles) {
  using Acc = acc_t<T>;
  __shared__ Acc As[kTileK][kTileM + 1];  // [r][co]
  __shared__ Acc Bs[kTileK][kTileN + 1];  // [r][k]
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int group = blockIdx.z;
  const int m0 = (blockIdx.y / col_tiles) * kTileM, n0 = (blockIdx.y % col_tiles) * kTileN;
  const int Kg = g.Cg * g.taps;
  const int64_t R = g.N * g.P;
  const int64_t r_begin = int64_t(blockIdx.x) * per_split;
  const int64_t r_end = min(R, r_begin + per_split);

  // This thread loads reduction row lr of both tiles, at 4 rows co and 4 columns k that stay
  // fixed: their offsets are worked out once.
  const int lr = t % kTileK, lj = t / kTileK;
  int64_t co_offset[4];  // channel offset of gy within an image; -1 outside the group
  int k_channel[4], k_dh[4], k_dw[4];  // input channel offset, window offsets; channel -1: none
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int co = m0 + lj + 16 * j, k = n0 + lj + 16 * j;
    co_offset[j] = co < g.Cog ? (int64_t(group) * g.Cog + co) * g.P : -1;
    if (k < Kg) {
      const int ci = k / g.taps, tap = k - ci * g.taps, kh = tap / g.kW, kw = tap - kh * g.kW;
      k_channel[j] = (group * g.Cg + ci) * g.HW;
      k_dh[j] = kh * g.dh - g.ph;
      k_dw[j] = kw * g.dw - g.pw;
    } else {
      k_channel[j] = -1, k_dh[j] = 0, k_dw[j] = 0;
    }
  }

  Acc acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = Acc(0);

  for (int64_t r0 = r_begin; r0 < r_end; r0 += kTileK) {
    const int64_t r = r0 + lr;
    const bool valid = r < r_end;
    int64_t img = 0;
    int p = 0, oh = 0, ow = 0;
    if (valid) {
      img = r / g.P;
      p = int(r - img * g.P), oh = p / g.Wo, ow = p - oh * g.Wo;
    }
    const T* gy_img = gy + img * g.C_out * int64_t(g.P);
    const T* x_img = x + img * g.C_in * int64_t(g.HW);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      As[lr][lj + 16 * j] =
          valid && co_offset[j] >= 0 ? Acc(widen(gy_img[co_offset[j] + p])) : Acc(0);
      Acc v = Acc(0);
      if (valid && k_channel[j] >= 0) {
        const int ih = oh * g.sh + k_dh[j], iw = ow * g.sw + k_dw[j];
        if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
          v = widen(x_img[k_channel[j] + ih * g.W + iw]);
      }
      Bs[lr][lj + 16 * j] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      Acc av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = As[kk][tx + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][ty + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }

  Acc* out = partial + int64_t(blockIdx.x) * g.C_out * Kg;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int co = m0 + tx + 16 * i;
    if (co >= g.Cog) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int k = n0 + ty + 16 * j;
      if (k < Kg) out[(int64_t(group) * g.Cog + co) * Kg + k] = acc[i][j];
    }
  }
}

// out[i] = sum over s < splits of partial[s * count + i], in the order of s.
template <class T>
__global__ void sum_partials_kernel(const acc_t<T>* partial, int64_t splits, int64_t count,
                                    T* out) {
  for (int64_t i = global_thread(); i < count; i += grid_threads()) {
    acc_t<T> acc = 0;
    for (int64_t s = 0; s < splits; ++s) acc += partial[s * count + i];
    out[i] = convert<T>(acc);
  }
}

template <class T>
Status sum_partials(const acc_t<T>* partial, int64_t splits, int64_t count, T* out,
                    cudaStream_t stream) {
  sum_partials_kernel<T><<<blocks_for(count), kThreads, 0, stream>>>(partial, splits, count, out);
  return launch_status("conv2d sum_partials_kernel");
}

// The split of the weight gradient's reduction, shared by the scratch size and the launch.
struct WeightSplit {
  int64_t splits, per_split;
  int row_tiles, col_tiles;
};
WeightSplit weight_split(const Geom& g) {
  const int64_t R = g.N * int64_t(g.P);
  WeightSplit w;
  w.row_tiles = (g.Cog + kTileM - 1) / kTileM;
  w.col_tiles = (g.Cg * g.taps + kTileN - 1) / kTileN;
  w.splits = reduction_splits(R, int64_t(w.row_tiles) * w.col_tiles * g.groups, 4 * kTileK);
  // Whole tiles of the reduction per split, then drop the splits left empty by the rounding.
  w.per_split = ((R + w.splits - 1) / w.splits + kTileK - 1) / kTileK * kTileK;
  w.splits = std::max<int64_t>(1, (R + w.per_split - 1) / w.per_split);
  return w;
}

// ---- depthwise (one input channel per group): direct loops

// y[img, co, oh, ow]: one thread per output.
template <class T>
__global__ void depthwise_forward_kernel(Geom g, const T* x, const T* w, const T* b, T* y) {
  const int64_t total = g.N * g.C_out * int64_t(g.P);
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t plane = i / g.P;  // img * C_out + co
    const int p = int(i - plane * g.P), oh = p / g.Wo, ow = p - oh * g.Wo;
    const int co = int(plane % g.C_out);
    const int64_t img = plane / g.C_out;
    const T* xp = x + (img * g.C_in + co / g.Cog) * g.HW;
    const T* wp = w + int64_t(co) * g.taps;
    acc_t<T> acc = b ? acc_t<T>(widen(b[co])) : acc_t<T>(0);
    for (int kh = 0; kh < g.kH; ++kh) {
      const int ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int kw = 0; kw < g.kW; ++kw) {
        const int iw = ow * g.sw - g.pw + kw * g.dw;
        if (iw >= 0 && iw < g.W) acc += widen(wp[kh * g.kW + kw]) * widen(xp[ih * g.W + iw]);
      }
    }
    y[i] = convert<T>(acc);
  }
}

// gx[img, ci, ih, iw]: one thread per input element gathers from the outputs that read it.
template <class T>
__global__ void depthwise_input_grad_kernel(Geom g, const T* gy, const T* w, T* gx) {
  const int64_t total = g.N * g.C_in * int64_t(g.HW);
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t plane = i / g.HW;  // img * C_in + ci
    const int p = int(i - plane * g.HW), ih = p / g.W, iw = p - ih * g.W;
    const int ci = int(plane % g.C_in);
    const int64_t img = plane / g.C_in;
    acc_t<T> acc = 0;
    for (int mult = 0; mult < g.Cog; ++mult) {
      const int co = ci * g.Cog + mult;
      const T* gp = gy + (img * g.C_out + co) * g.P;
      const T* wp = w + int64_t(co) * g.taps;
      for (int kh = 0; kh < g.kH; ++kh) {
        const int th = ih + g.ph - kh * g.dh;
        if (th < 0 || th % g.sh != 0 || th / g.sh >= g.Ho) continue;
        for (int kw = 0; kw < g.kW; ++kw) {
          const int tw = iw + g.pw - kw * g.dw;
          if (tw < 0 || tw % g.sw != 0 || tw / g.sw >= g.Wo) continue;
          acc += widen(wp[kh * g.kW + kw]) * widen(gp[(th / g.sh) * g.Wo + tw / g.sw]);
        }
      }
    }
    gx[i] = convert<T>(acc);
  }
}

// partial[split][co * taps + tap]: block (blockIdx.x = co * taps + tap, blockIdx.y = split)
// sums gy * x over its share of (img, oh, ow).
template <class T>
__global__ void depthwise_weight_grad_kernel(Geom g, const T* gy, const T* x, acc_t<T>* partial,
                                             int64_t per_split) {
  __shared__ acc_t<T> scratch[32];
  const int co = blockIdx.x / g.taps, tap = blockIdx.x % g.taps;
  const int kh = tap / g.kW, kw = tap - kh * g.kW;
  const int ci = co / g.Cog;
  const int64_t R = g.N * int64_t(g.P);
  const int64_t r_begin = int64_t(blockIdx.y) * per_split, r_end = min(R, r_begin + per_split);
  acc_t<T> acc = 0;
  for (int64_t r = r_begin + threadIdx.x; r < r_end; r += blockDim.x) {
    const int64_t img = r / g.P;
    const int p = int(r - img * g.P), oh = p / g.Wo, ow = p - oh * g.Wo;
    const int ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
    acc += acc_t<T>(widen(gy[(img * g.C_out + co) * g.P + p])) *
           acc_t<T>(widen(x[(img * g.C_in + ci) * g.HW + ih * g.W + iw]));
  }
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[int64_t(blockIdx.y) * g.C_out * g.taps + blockIdx.x] = acc;
}

int64_t depthwise_splits(const Geom& g) {
  return reduction_splits(g.N * int64_t(g.P), int64_t(g.C_out) * g.taps, 4 * kThreads);
}

// ---- bias gradient: partial[split][c] = sum of gy[img, c, p] over the split's share of
// (img, p); block (c, split).
template <class T>
__global__ void bias_grad_kernel(Geom g, const T* gy, acc_t<T>* partial, int64_t per_split) {
  __shared__ acc_t<T> scratch[32];
  const int c = blockIdx.x;
  const int64_t R = g.N * int64_t(g.P);
  const int64_t r_begin = int64_t(blockIdx.y) * per_split, r_end = min(R, r_begin + per_split);
  acc_t<T> acc = 0;
  for (int64_t r = r_begin + threadIdx.x; r < r_end; r += blockDim.x) {
    const int64_t img = r / g.P;
    acc += widen(gy[(img * g.C_out + c) * g.P + (r - img * g.P)]);
  }
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[int64_t(blockIdx.y) * g.C_out + c] = acc;
}

template <class T>
__global__ void add_bias_kernel(Geom g, const T* b, T* y) {
  const int64_t total = g.N * g.C_out * int64_t(g.P);
  for (int64_t i = global_thread(); i < total; i += grid_threads())
    y[i] = convert<T>(acc_t<T>(widen(y[i])) + acc_t<T>(widen(b[(i / g.P) % g.C_out])));
}

int64_t bias_splits(const Geom& g) {
  return reduction_splits(g.N * int64_t(g.P), g.C_out, 4 * kThreads);
}

int64_t per_split_of(int64_t length, int64_t splits) { return (length + splits - 1) / splits; }

bool is_depthwise(const Geom& g) { return g.Cg == 1 && g.groups > 1; }

Status scratch_too_small(size_t have, size_t need) {
  return Status{"conv2d backward", "scratch of " + std::to_string(have) + " bytes, " +
                                       std::to_string(need) + " needed"};
}

}  // namespace

template <class T>
Status conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y,
                      cudaStream_t stream) {
  Geom g;
  if (Status st = make_geom(s, &g); !st.ok()) return st;
  if (g.N == 0 || g.P == 0 || g.C_out == 0) return ok_status();
  if (is_depthwise(g)) {
    const int64_t total = g.N * g.C_out * int64_t(g.P);
    depthwise_forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(g, x, w, b, y);
    return launch_status("depthwise_forward_kernel");
  }
  ForwardGemm<T> gemm{g, x, w, b, y};
  return launch_implicit_gemm<T>(gemm, g.N * int64_t(g.P), g.Cog, g.groups, stream,
                                 "implicit_gemm_kernel (conv2d forward)");
}

template <class T>
Status conv2d_add_bias(const Conv2dShape& s, const T* b, T* y, cudaStream_t stream) {
  Geom g;
  if (Status st = make_geom(s, &g); !st.ok()) return st;
  const int64_t total = g.N * g.C_out * int64_t(g.P);
  if (total == 0) return ok_status();
  add_bias_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(g, b, y);
  return launch_status("add_bias_kernel");
}

template <class T>
Status conv2d_backward_input(const Conv2dShape& s, const T* gy, const T* w, T* gx,
                             cudaStream_t stream) {
  Geom g;
  if (Status st = make_geom(s, &g); !st.ok()) return st;
  const int64_t total = g.N * g.C_in * int64_t(g.HW);
  if (total == 0) return ok_status();
  if (is_depthwise(g)) {
    depthwise_input_grad_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(g, gy, w, gx);
    return launch_status("depthwise_input_grad_kernel");
  }
  InputGradGemm<T> gemm{g, gy, w, gx};
  return launch_implicit_gemm<T>(gemm, g.N * int64_t(g.HW), g.Cg, g.groups, stream,
                                 "implicit_gemm_kernel (conv2d input gradient)");
}

template <class T>
size_t conv2d_backward_weight_scratch_bytes(const Conv2dShape& s) {
  Geom g;
  if (!make_geom(s, &g).ok()) return 0;
  const int64_t splits = is_depthwise(g) ? depthwise_splits(g) : weight_split(g).splits;
  return size_t(splits) * size_t(g.C_out) * size_t(g.Cg * g.taps) * sizeof(acc_t<T>);
}

template <class T>
Status conv2d_backward_weight(const Conv2dShape& s, const T* gy, const T* x, T* gw, void* scratch,
                              size_t scratch_bytes, cudaStream_t stream) {
  Geom g;
  if (Status st = make_geom(s, &g); !st.ok()) return st;
  const int64_t count = int64_t(g.C_out) * g.Cg * g.taps;
  if (count == 0) return ok_status();
  if (g.N * int64_t(g.P) == 0) {  // no outputs: nothing flows back
    SH_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(gw, 0, size_t(count) * sizeof(T), stream));
    return ok_status();
  }
  const size_t need = conv2d_backward_weight_scratch_bytes<T>(s);
  if (scratch_bytes < need) return scratch_too_small(scratch_bytes, need);
  acc_t<T>* partial = static_cast<acc_t<T>*>(scratch);
  const int64_t R = g.N * int64_t(g.P);
  int64_t splits;
  if (is_depthwise(g)) {
    splits = depthwise_splits(g);
    if (count > INT_MAX) return too_large("depthwise_weight_grad_kernel");
    const dim3 grid{unsigned(count), unsigned(splits)};
    depthwise_weight_grad_kernel<T>
        <<<grid, kThreads, 0, stream>>>(g, gy, x, partial, per_split_of(R, splits));
    if (Status st = launch_status("depthwise_weight_grad_kernel"); !st.ok()) return st;
  } else {
    const WeightSplit ws = weight_split(g);
    splits = ws.splits;
    const int64_t tiles = int64_t(ws.row_tiles) * ws.col_tiles;
    if (tiles > 65535 || g.groups > 65535) return too_large("weight_grad_kernel");
    const dim3 grid{unsigned(ws.splits), unsigned(tiles), unsigned(g.groups)};
    weight_grad_kernel<T>
        <<<grid, kTileThreads, 0, stream>>>(g, gy, x, partial, ws.per_split, ws.col_tiles);
    if (Status st = launch_status("weight_grad_kernel"); !st.ok()) return st;
  }
  return sum_partials(partial, splits, count, gw, stream);
}

template <class T>
size_t conv2d_backward_bias_scratch_bytes(const Conv2dShape& s) {
  Geom g;
  if (!make_geom(s, &g).ok()) return 0;
  return size_t(bias_splits(g)) * size_t(g.C_out) * sizeof(acc_t<T>);
}

template <class T>
Status conv2d_backward_bias(const Conv2dShape& s, const T* gy, T* gb, void* scratch,
                            size_t scratch_bytes, cudaStream_t stream) {
  Geom g;
  if (Status st = make_geom(s, &g); !st.ok()) return st;
  if (g.C_out == 0) return ok_status();
  const int64_t R = g.N * int64_t(g.P);
  if (R == 0) {
    SH_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(gb, 0, size_t(g.C_out) * sizeof(T), stream));
    return ok_status();
  }
  const size_t need = conv2d_backward_bias_scratch_bytes<T>(s);
  if (scratch_bytes < need) return scratch_too_small(scratch_bytes, need);
  const int64_t splits = bias_splits(g);
  acc_t<T>* partial = static_cast<acc_t<T>*>(scratch);
  const dim3 grid{unsigned(g.C_out), unsigned(splits)};
  bias_grad_kernel<T><<<grid, kThreads, 0, stream>>>(g, gy, partial, per_split_of(R, splits));
  if (Status st = launch_status("bias_grad_kernel"); !st.ok()) return st;
  return sum_partials(partial, splits, int64_t(g.C_out), gb, stream);
}

#define SH_INSTANTIATE(T)                                                                        \
  template Status conv2d_forward<T>(const Conv2dShape&, const T*, const T*, const T*, T*,       \
                                    cudaStream_t);                                              \
  template Status conv2d_add_bias<T>(const Conv2dShape&, const T*, T*, cudaStream_t);           \
  template Status conv2d_backward_input<T>(const Conv2dShape&, const T*, const T*, T*,          \
                                           cudaStream_t);                                       \
  template size_t conv2d_backward_weight_scratch_bytes<T>(const Conv2dShape&);                  \
  template size_t conv2d_backward_bias_scratch_bytes<T>(const Conv2dShape&);                    \
  template Status conv2d_backward_weight<T>(const Conv2dShape&, const T*, const T*, T*, void*,  \
                                            size_t, cudaStream_t);                              \
  template Status conv2d_backward_bias<T>(const Conv2dShape&, const T*, T*, void*, size_t,      \
                                          cudaStream_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
SH_INSTANTIATE(bf16)
#undef SH_INSTANTIATE

}  // namespace shallow::cuda
