// The GEMM epilogue as a pass of its own, for products computed by cuBLAS: C = act(C + bias)
// in place over a batch of M x N matrices (row stride ldc, batch stride stride_c). The grid's y
// axis walks the batch * M rows (one division per row, none per element), x the columns;
// consecutive threads take consecutive columns (coalesced). Where a row is 16-byte aligned and
// N a multiple of the vector width, each thread takes 16 bytes at once.
#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

template <class T>
__device__ inline T bias_act(T c, const T* bias, bool bias_per_row, int64_t row, int64_t col,
                             GemmActivation act) {
  using Acc = typename DeviceEpilogue<T>::Acc;
  Acc v = Acc(widen(c));
  if (bias != nullptr) v += Acc(widen(bias[bias_per_row ? row : col]));
  return convert<T>(apply_activation(act, v));
}

template <class T>
__global__ void gemm_bias_act_kernel(int64_t rows, int64_t M, int64_t N, T* C, int64_t ldc,
                                     int64_t stride_c, const T* bias, bool bias_per_row,
                                     GemmActivation act) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int64_t b = r / M, row = r - b * M;
    T* c = C + b * stride_c + row * ldc;
    for (int64_t col = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; col < N;
         col += int64_t(gridDim.x) * blockDim.x)
      c[col] = bias_act(c[col], bias, bias_per_row, row, col, act);
  }
}

// The same, 16 bytes (kWidth elements) per thread; N, ldc, stride_c multiples of kWidth and C
// (and a per-column bias) 16-byte aligned.
template <class T>
__global__ void gemm_bias_act_vec_kernel(int64_t rows, int64_t M, int64_t N, T* C, int64_t ldc,
                                         int64_t stride_c, const T* bias, bool bias_per_row,
                                         GemmActivation act) {
  constexpr int kWidth = 16 / sizeof(T);
  const int64_t nv = N / kWidth;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int64_t b = r / M, row = r - b * M;
    uint4* c = reinterpret_cast<uint4*>(C + b * stride_c + row * ldc);
    for (int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; v < nv;
         v += int64_t(gridDim.x) * blockDim.x) {
      uint4 raw = c[v];
      T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
      for (int k = 0; k < kWidth; ++k)
        e[k] = bias_act(e[k], bias, bias_per_row, row, v * kWidth + k, act);
      c[v] = raw;
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

template <class T>
Status gemm_bias_act(int64_t batch, int64_t M, int64_t N, T* C, int64_t ldc, int64_t stride_c,
                     const T* bias, bool bias_per_row, GemmActivation act, cudaStream_t stream) {
  const int64_t rows = batch * M;
  if (rows == 0 || N == 0 || (bias == nullptr && act == GemmActivation::none)) return ok_status();
  constexpr int64_t w = 16 / sizeof(T);
  const bool vec = N % w == 0 && ldc % w == 0 && (batch == 1 || stride_c % w == 0) &&
                   aligned16(C) && (bias == nullptr || bias_per_row || aligned16(bias));
  const int64_t per_row = vec ? N / w : N;
  const unsigned bx = unsigned((per_row + kThreads - 1) / kThreads);
  const unsigned by = unsigned(rows < 65535 ? rows : 65535);
  if (vec) {
    gemm_bias_act_vec_kernel<T><<<dim3(bx, by), kThreads, 0, stream>>>(
        rows, M, N, C, ldc, stride_c, bias, bias_per_row, act);
    return launch_status("gemm_bias_act_vec_kernel");
  }
  gemm_bias_act_kernel<T><<<dim3(bx, by), kThreads, 0, stream>>>(rows, M, N, C, ldc, stride_c,
                                                                 bias, bias_per_row, act);
  return launch_status("gemm_bias_act_kernel");
}

#define SH_GEMM_BIAS_ACT_INSTANTIATE(T)                                                       \
  template Status gemm_bias_act<T>(int64_t, int64_t, int64_t, T*, int64_t, int64_t, const T*, \
                                   bool, GemmActivation, cudaStream_t);
SH_GEMM_BIAS_ACT_INSTANTIATE(float)
SH_GEMM_BIAS_ACT_INSTANTIATE(double)
SH_GEMM_BIAS_ACT_INSTANTIATE(bf16)

}  // namespace shallow::cuda
