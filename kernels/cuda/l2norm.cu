#include "kernels/cuda/l2norm.h"

#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

// inner == 1 uses a block per row (a row is contiguous); inner > 1 a thread per (outer, inner)
// line, so neighbouring threads read neighbouring columns. Both walk a line through
// (start, stride) and share the per-element formulas below.

template <class T>
__device__ inline T scale_of(T nrm, double eps) {
  return T(1) / (nrm < T(eps) ? T(eps) : nrm);  // the CPU's std::max(nrm, eps): NaN kept
}

template <class T>
__global__ void l2_rows_kernel(int64_t rows, int64_t n, const T* __restrict__ x, double eps,
                               T* __restrict__ y, T* __restrict__ norm) {
  __shared__ double scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    double ss = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) ss += double(xr[k]) * double(xr[k]);
    ss = block_sum(ss, scratch);
    const T nrm = T(sqrt(ss));
    const T scale = scale_of(nrm, eps);
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) y[r * n + k] = xr[k] * scale;
    if (threadIdx.x == 0) norm[r] = nrm;
  }
}

template <class T>
__global__ void l2_rows_backward_kernel(int64_t rows, int64_t n, const T* __restrict__ y,
                                        const T* __restrict__ norm, double eps,
                                        const T* __restrict__ gy, T* __restrict__ gx) {
  __shared__ double scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T nrm = norm[r];
    const int64_t base = r * n;
    if (!(nrm > T(eps))) {  // the clamp is active: y = x / eps is linear in x
      for (int64_t k = threadIdx.x; k < n; k += blockDim.x) gx[base + k] = gy[base + k] / T(eps);
      continue;  // uniform across the block: every thread reads the same nrm
    }
    double dot = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) dot += double(gy[base + k]) * y[base + k];
    dot = block_sum(dot, scratch);
    const T d = T(dot), inv = T(1) / nrm;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
      gx[base + k] = (gy[base + k] - y[base + k] * d) * inv;
  }
}

template <class T>
__global__ void l2_columns_kernel(int64_t outer, int64_t n, int64_t inner, const T* __restrict__ x,
                                  double eps, T* __restrict__ y, T* __restrict__ norm) {
  const int64_t lines = outer * inner;
  for (int64_t j = global_thread(); j < lines; j += grid_threads()) {
    const int64_t start = (j / inner) * n * inner + j % inner;
    double ss = 0;
    for (int64_t k = 0; k < n; ++k)
      ss += double(x[start + k * inner]) * double(x[start + k * inner]);
    const T nrm = T(sqrt(ss));
    const T scale = scale_of(nrm, eps);
    for (int64_t k = 0; k < n; ++k) y[start + k * inner] = x[start + k * inner] * scale;
    norm[j] = nrm;
  }
}

template <class T>
__global__ void l2_columns_backward_kernel(int64_t outer, int64_t n, int64_t inner,
                                           const T* __restrict__ y, const T* __restrict__ norm,
                                           double eps, const T* __restrict__ gy,
                                           T* __restrict__ gx) {
  const int64_t lines = outer * inner;
  for (int64_t j = global_thread(); j < lines; j += grid_threads()) {
    const int64_t start = (j / inner) * n * inner + j % inner;
    const T nrm = norm[j];
    if (!(nrm > T(eps))) {
      for (int64_t k = 0; k < n; ++k) gx[start + k * inner] = gy[start + k * inner] / T(eps);
      continue;
    }
    double dot = 0;
    for (int64_t k = 0; k < n; ++k) dot += double(gy[start + k * inner]) * y[start + k * inner];
    const T d = T(dot), inv = T(1) / nrm;
    for (int64_t k = 0; k < n; ++k)
      gx[start + k * inner] = (gy[start + k * inner] - y[start + k * inner] * d) * inv;
  }
}

int row_threads(int64_t n) {
  int t = 32;
  while (t < kThreads && t < n) t *= 2;
  return t;
}

unsigned row_blocks(int64_t rows) { return unsigned(rows < 65536 ? rows : 65536); }

}  // namespace

template <class T>
Status l2_normalize(int64_t outer, int64_t n, int64_t inner, const T* x, double eps, T* y, T* norm,
                    cudaStream_t stream) {
  if (outer <= 0 || n <= 0 || inner <= 0) return ok_status();
  if (inner == 1) {
    l2_rows_kernel<T><<<row_blocks(outer), row_threads(n), 0, stream>>>(outer, n, x, eps, y, norm);
    return launch_status("l2_rows_kernel");
  }
  l2_columns_kernel<T>
      <<<blocks_for(outer * inner), kThreads, 0, stream>>>(outer, n, inner, x, eps, y, norm);
  return launch_status("l2_columns_kernel");
}

template <class T>
Status l2_normalize_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* norm,
                             double eps, const T* gy, T* gx, cudaStream_t stream) {
  if (outer <= 0 || n <= 0 || inner <= 0) return ok_status();
  if (inner == 1) {
    l2_rows_backward_kernel<T>
        <<<row_blocks(outer), row_threads(n), 0, stream>>>(outer, n, y, norm, eps, gy, gx);
    return launch_status("l2_rows_backward_kernel");
  }
  l2_columns_backward_kernel<T>
      <<<blocks_for(outer * inner), kThreads, 0, stream>>>(outer, n, inner, y, norm, eps, gy, gx);
  return launch_status("l2_columns_backward_kernel");
}

#define SH_INSTANTIATE(T)                                                                         \
  template Status l2_normalize<T>(int64_t, int64_t, int64_t, const T*, double, T*, T*,            \
                                  cudaStream_t);                                                  \
  template Status l2_normalize_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, double, \
                                           const T*, T*, cudaStream_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cuda
