#include "kernels/cuda/norm.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/column_sum.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

using acc_t = double;

unsigned row_blocks(int64_t rows) { return unsigned(rows < 65536 ? rows : 65536); }

// A block per row: mean, then the mean squared deviation (two passes over the row, which
// stays in cache), then the normalized output. bf16/f16 rows are widened to float and the
// output rounded once; their mean and rstd (S) are kept in float.
template <class T, class S>
__global__ void layer_norm_kernel(int64_t rows, int64_t n, const T* __restrict__ x,
                                  const T* __restrict__ weight, const T* __restrict__ bias,
                                  double eps, T* __restrict__ y, S* __restrict__ mean,
                                  S* __restrict__ rstd) {
  using W = widened_t<T>;
  __shared__ acc_t scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    acc_t s = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) s += acc_t(widen(xr[k]));
    const acc_t m = block_sum(s, scratch) / acc_t(n);
    acc_t ss = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      const acc_t d = acc_t(widen(xr[k])) - m;
      ss += d * d;
    }
    const acc_t var = block_sum(ss, scratch) / acc_t(n);
    const W mu = W(m), rs = W(1.0 / sqrt(var + eps));
    if (threadIdx.x == 0) {
      if (mean) mean[r] = S(mu);
      if (rstd) rstd[r] = S(rs);
    }
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      W v = (widen(xr[k]) - mu) * rs;
      if (weight) v = v * widen(weight[k]);
      if (bias) v = v + widen(bias[k]);
      yr[k] = convert<T>(v);
    }
  }
}

// Rows of at most 32 * kPerLane values: a warp per row, the row held in registers, sums by
// shuffles (no shared memory, no block barrier), one read and one write of each value. The
// block kernel above takes longer rows; rows of whole 16-byte chunks at aligned addresses (the
// ViT's 768) take layer_norm_chunks_kernel below, this kernel the rest (doubles, odd lengths,
// unaligned views).
constexpr int kPerLane = 32;
constexpr int kWarpRowMax = 32 * kPerLane;

template <class T, class S>
__global__ void layer_norm_warp_kernel(int64_t rows, int n, const T* __restrict__ x,
                                       const T* __restrict__ weight, const T* __restrict__ bias,
                                       double eps, T* __restrict__ y, S* __restrict__ mean,
                                       S* __restrict__ rstd) {
  using W = widened_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows;
       r += warps) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    W v[kPerLane];
    acc_t s = 0;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int k = lane + 32 * j;
      v[j] = k < n ? widen(xr[k]) : W(0);
      s += acc_t(v[j]);
    }
    const acc_t m = warp_sum(s) / acc_t(n);
    acc_t ss = 0;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const acc_t d = acc_t(v[j]) - m;
      if (lane + 32 * j < n) ss += d * d;
    }
    const acc_t var = warp_sum(ss) / acc_t(n);
    const W mu = W(m), rs = W(1.0 / sqrt(var + eps));
    if (lane == 0) {
      if (mean) mean[r] = S(mu);
      if (rstd) rstd[r] = S(rs);
    }
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int k = lane + 32 * j;
      if (k >= n) break;
      W o = (v[j] - mu) * rs;
      if (weight) o = o * widen(weight[k]);
      if (bias) o = o + widen(bias[k]);
      yr[k] = convert<T>(o);
    }
  }
}

// ---- the same in 16-byte chunks, for bf16, f16 and f32 rows of whole chunks

// Values of T in one 16-byte chunk.
template <class T>
constexpr int kChunkValues = int(16 / sizeof(T));

// A row of at most kWarpRowMax values in chunks: at most this many chunks per lane.
template <class T>
constexpr int kMaxChunksPerLane = kWarpRowMax / 32 / kChunkValues<T>;

template <class T>
__device__ inline void unpack_chunk(const uint4& raw, float* out) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t w = words[i];
    if constexpr (std::is_same_v<T, bf16>) {  // a bf16 is the high half of a float
      out[2 * i] = __uint_as_float(w << 16);
      out[2 * i + 1] = __uint_as_float(w & 0xffff0000u);
    } else if constexpr (std::is_same_v<T, f16>) {
      out[2 * i] = __half2float(__ushort_as_half(uint16_t(w & 0xffffu)));
      out[2 * i + 1] = __half2float(__ushort_as_half(uint16_t(w >> 16)));
    } else {
      out[i] = __uint_as_float(w);
    }
  }
}

// Rounds kChunkValues<T> floats to T (to nearest even, as convert<T>) into one chunk.
template <class T>
__device__ inline uint4 pack_chunk(const float* v) {
  uint32_t words[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (std::is_same_v<T, bf16>) {
      const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
      words[i] = uint32_t(__bfloat16_as_ushort(h.x)) | (uint32_t(__bfloat16_as_ushort(h.y)) << 16);
    } else if constexpr (std::is_same_v<T, f16>) {
      const __half2 h = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
      words[i] = uint32_t(__half_as_ushort(__low2half(h))) |
                 (uint32_t(__half_as_ushort(__high2half(h))) << 16);
    } else {
      words[i] = __float_as_uint(v[i]);
    }
  }
  return make_uint4(words[0], words[1], words[2], words[3]);
}

// layer_norm_warp_kernel with 16-byte loads and stores: lane l holds chunks l, l + 32, ... of
// the row (kChunks of them, a warp's loads cover 512 contiguous bytes), weight and bias are
// read in chunks too. x, y, weight and bias are 16-byte aligned and n a multiple of
// kChunkValues<T> (so every row starts aligned). The arithmetic is the warp kernel's: sums in
// double over the float values, the output in float rounded once. mean and rstd may be null.
template <class T, int kChunks>
__global__ void __launch_bounds__(kThreads)
    layer_norm_chunks_kernel(int64_t rows, int n, const T* __restrict__ x,
                             const T* __restrict__ weight, const T* __restrict__ bias, double eps,
                             T* __restrict__ y, float* __restrict__ mean,
                             float* __restrict__ rstd) {
  constexpr int kValues = kChunkValues<T>;
  const int lane = threadIdx.x & 31;
  const int chunks = n / kValues;
  const uint4* w4 = reinterpret_cast<const uint4*>(weight);
  const uint4* b4 = reinterpret_cast<const uint4*>(bias);
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows;
       r += warps) {
    const uint4* xr = reinterpret_cast<const uint4*>(x + r * n);
    uint4* yr = reinterpret_cast<uint4*>(y + r * n);
    // Every load of the row is issued before any use.
    uint4 raw[kChunks];
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int c = lane + 32 * j;
      raw[j] = c < chunks ? xr[c] : make_uint4(0, 0, 0, 0);
    }
    float v[kChunks][kValues];
    acc_t s = 0;
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      unpack_chunk<T>(raw[j], v[j]);
#pragma unroll
      for (int e = 0; e < kValues; ++e) s += acc_t(v[j][e]);  // zeros past the row
    }
    const acc_t m = warp_sum(s) / acc_t(n);
    acc_t ss = 0;
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      if (lane + 32 * j >= chunks) continue;
#pragma unroll
      for (int e = 0; e < kValues; ++e) {
        const acc_t d = acc_t(v[j][e]) - m;
        ss += d * d;
      }
    }
    const acc_t var = warp_sum(ss) / acc_t(n);
    const float mu = float(m), rs = float(1.0 / sqrt(var + eps));
    if (lane == 0) {
      if (mean) mean[r] = mu;
      if (rstd) rstd[r] = rs;
    }
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int c = lane + 32 * j;
      if (c >= chunks) break;
      float o[kValues];
#pragma unroll
      for (int e = 0; e < kValues; ++e) o[e] = (v[j][e] - mu) * rs;
      if (weight) {
        float wv[kValues];
        unpack_chunk<T>(w4[c], wv);
#pragma unroll
        for (int e = 0; e < kValues; ++e) o[e] = o[e] * wv[e];
      }
      if (bias) {
        float bv[kValues];
        unpack_chunk<T>(b4[c], bv);
#pragma unroll
        for (int e = 0; e < kValues; ++e) o[e] = o[e] + bv[e];
      }
      yr[c] = pack_chunk<T>(o);
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Whether the chunk kernel can take these rows: T of 2 or 4 bytes (the float statistics),
// rows of whole chunks within kWarpRowMax, every pointer 16-byte aligned (null ones aside).
template <class T>
bool chunk_rows(int64_t n, const T* x, const T* weight, const T* bias, const T* y) {
  if constexpr (std::is_same_v<T, double>) {
    return false;
  } else {
    return n <= kWarpRowMax && n % kChunkValues<T> == 0 && aligned16(x) && aligned16(y) &&
           (weight == nullptr || aligned16(weight)) && (bias == nullptr || aligned16(bias));
  }
}

// Launches the chunk kernel whose kChunks is the chunks per lane of rows of n values.
template <class T, int kChunks = 1>
Status launch_layer_norm_chunks(int64_t rows, int64_t n, const T* x, const T* weight,
                                const T* bias, double eps, T* y, float* mean, float* rstd,
                                cudaStream_t stream) {
  const int64_t chunks = n / kChunkValues<T>;
  if constexpr (kChunks < kMaxChunksPerLane<T>) {
    if (chunks > 32 * kChunks)
      return launch_layer_norm_chunks<T, kChunks + 1>(rows, n, x, weight, bias, eps, y, mean,
                                                      rstd, stream);
  }
  constexpr int64_t kWarpsPerBlock = kThreads / 32;
  const int64_t blocks = std::min<int64_t>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock, 65535 * 8);
  layer_norm_chunks_kernel<T, kChunks><<<unsigned(blocks), kThreads, 0, stream>>>(
      rows, int(n), x, weight, bias, eps, y, mean, rstd);
  return launch_status("layer_norm_chunks_kernel");
}

// gx = rstd * (g - mean(g) - xhat * mean(g * xhat)), with g = gy * weight.
template <class T>
__global__ void layer_norm_backward_input_kernel(int64_t rows, int64_t n, const T* __restrict__ x,
                                                 const T* __restrict__ mean,
                                                 const T* __restrict__ rstd,
                                                 const T* __restrict__ weight,
                                                 const T* __restrict__ gy, T* __restrict__ gx) {
  __shared__ acc_t scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    const T* gr = gy + r * n;
    const T mu = mean[r], rs = rstd[r];
    acc_t sg = 0, sgx = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      const T g = weight ? gr[k] * weight[k] : gr[k];
      const T xhat = (xr[k] - mu) * rs;
      sg += acc_t(g);
      sgx += acc_t(g) * acc_t(xhat);
    }
    const T mean_g = T(block_sum(sg, scratch) / acc_t(n));
    const T mean_gx = T(block_sum(sgx, scratch) / acc_t(n));
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      const T g = weight ? gr[k] * weight[k] : gr[k];
      const T xhat = (xr[k] - mu) * rs;
      gx[r * n + k] = rs * (g - mean_g - xhat * mean_gx);
    }
  }
}

// gweight[j] = sum_r gy[r, j] * xhat[r, j] and gbias[j] = sum_r gy[r, j], by column_sum.cuh's
// blocks of 8 columns (32 below 128 rows), added in a fixed order. Blocks of 32 columns alone
// took 35 us for a [1024, 1024] gradient on an H200: 32 blocks for 132 multiprocessors.
template <class T, int C>
__global__ void __launch_bounds__(kColumnSumThreads)
    layer_norm_backward_params_kernel(int64_t rows, int64_t n, const T* __restrict__ x,
                                      const T* __restrict__ mean, const T* __restrict__ rstd,
                                      const T* __restrict__ gy, T* __restrict__ gweight,
                                      T* __restrict__ gbias) {
  using Sum = ColumnSum<C>;
  __shared__ acc_t part_w[Sum::kParts];
  __shared__ acc_t part_b[Sum::kParts];
  const int64_t j = int64_t(blockIdx.x) * C + Sum::col();
  acc_t sw = 0, sb = 0;
  if (j < n) {
    for (int64_t r = Sum::lane(); r < rows; r += Sum::kLanes) {
      const T g = gy[r * n + j];
      sw += acc_t(g) * acc_t((x[r * n + j] - mean[r]) * rstd[r]);
      sb += acc_t(g);
    }
  }
  const acc_t tw = Sum::total(sw, part_w), tb = Sum::total(sb, part_b);
  const int64_t jt = int64_t(blockIdx.x) * C + threadIdx.x;
  if (threadIdx.x < C && jt < n) {
    if (gweight) gweight[jt] = T(tw);
    if (gbias) gbias[jt] = T(tb);
  }
}

}  // namespace

// Every kernel also takes null mean and rstd (then nothing is saved), for callers that need
// no backward; the engine always passes both.
template <class T, class S>
Status layer_norm(int64_t rows, int64_t n, const T* x, const T* weight, const T* bias, double eps,
                  T* y, S* mean, S* rstd, cudaStream_t stream) {
  if (rows == 0) return ok_status();
  if (n == 0) return Status{"layer_norm", "rows of zero length"};
  if constexpr (std::is_same_v<S, float>) {
    if (chunk_rows(n, x, weight, bias, y))
      return launch_layer_norm_chunks(rows, n, x, weight, bias, eps, y, mean, rstd, stream);
  }
  if (n <= kWarpRowMax) {
    constexpr int64_t kWarpsPerBlock = kThreads / 32;
    const int64_t blocks = std::min<int64_t>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock, 65535 * 8);
    layer_norm_warp_kernel<<<unsigned(blocks), kThreads, 0, stream>>>(rows, int(n), x, weight, bias,
                                                                      eps, y, mean, rstd);
    return launch_status("layer_norm_warp_kernel");
  }
  layer_norm_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(rows, n, x, weight, bias, eps, y,
                                                               mean, rstd);
  return launch_status("layer_norm_kernel");
}

template <class T>
Status layer_norm_backward(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd,
                           const T* weight, const T* gy, T* gx, T* gweight, T* gbias,
                           cudaStream_t stream) {
  if (n == 0) return ok_status();
  if (gx && rows > 0) {
    layer_norm_backward_input_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(
        rows, n, x, mean, rstd, weight, gy, gx);
    Status s = launch_status("layer_norm_backward_input_kernel");
    if (!s.ok()) return s;
  }
  if (gweight || gbias) {
    // rows == 0 still runs: the sums are then zero.
    const int width = column_sum_width(rows);
    const unsigned blocks = unsigned((n + width - 1) / width);
    if (width == 8)
      layer_norm_backward_params_kernel<T, 8><<<blocks, kColumnSumThreads, 0, stream>>>(
          rows, n, x, mean, rstd, gy, gweight, gbias);
    else
      layer_norm_backward_params_kernel<T, 32><<<blocks, kColumnSumThreads, 0, stream>>>(
          rows, n, x, mean, rstd, gy, gweight, gbias);
    return launch_status("layer_norm_backward_params_kernel");
  }
  return ok_status();
}

template Status layer_norm<float>(int64_t, int64_t, const float*, const float*, const float*,
                                  double, float*, float*, float*, cudaStream_t);
template Status layer_norm<double>(int64_t, int64_t, const double*, const double*, const double*,
                                   double, double*, double*, double*, cudaStream_t);
template Status layer_norm<bf16, float>(int64_t, int64_t, const bf16*, const bf16*, const bf16*,
                                        double, bf16*, float*, float*, cudaStream_t);
template Status layer_norm<f16, float>(int64_t, int64_t, const f16*, const f16*, const f16*,
                                       double, f16*, float*, float*, cudaStream_t);
template Status layer_norm_backward<float>(int64_t, int64_t, const float*, const float*,
                                           const float*, const float*, const float*, float*,
                                           float*, float*, cudaStream_t);
template Status layer_norm_backward<double>(int64_t, int64_t, const double*, const double*,
                                            const double*, const double*, const double*, double*,
                                            double*, double*, cudaStream_t);

}  // namespace shallow::cuda
