#pragma once
// Helpers shared by the .cu files: error capture, launch sizes, warp and block reductions,
// and the float/double math the kernels are templated over. Device code only (nvcc).
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

// Returns a failed Status from the enclosing function when a runtime call fails.
#define SH_CUDA_RETURN_IF_ERROR(expr)                                               \
  do {                                                                             \
    cudaError_t sh_err_ = (expr);                                                  \
    if (sh_err_ != cudaSuccess)                                                    \
      return ::shallow::cuda::Status{#expr, cudaGetErrorString(sh_err_)};          \
  } while (0)

// The status of the launch just made: a bad configuration shows up here at once, while a
// fault inside the kernel shows up at the next synchronizing call.
inline Status launch_status(const char* kernel) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return Status{std::string("launch of ") + kernel, cudaGetErrorString(e)};
  return {};
}

constexpr int kThreads = 256;

// The current device's multiprocessor count, for grids sized to the GPU (80 when the query
// fails: the launch that follows reports any real problem).
inline int multiprocessors() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();
    return 80;
  }
  return sms;
}

// Blocks for a grid-stride loop over n items: enough to fill the GPU, never more than the
// items need, never zero (callers return early on n == 0).
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t want = (n + threads - 1) / threads;
  const int64_t cap = 65536;
  return unsigned(want < 1 ? 1 : (want > cap ? cap : want));
}

// Grid-stride loop index helpers, in 64 bits (tensors may exceed 2^31 elements).
__device__ inline int64_t global_thread() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t grid_threads() { return int64_t(gridDim.x) * blockDim.x; }

// ---- math on float and double (the float forms avoid promotion to double)

template <class T> __device__ inline T d_exp(T v) { if constexpr (std::is_same_v<T, float>) return expf(v); else return exp(v); }
template <class T> __device__ inline T d_expm1(T v) { if constexpr (std::is_same_v<T, float>) return expm1f(v); else return expm1(v); }
template <class T> __device__ inline T d_log(T v) { if constexpr (std::is_same_v<T, float>) return logf(v); else return log(v); }
template <class T> __device__ inline T d_log1p(T v) { if constexpr (std::is_same_v<T, float>) return log1pf(v); else return log1p(v); }
template <class T> __device__ inline T d_sqrt(T v) { if constexpr (std::is_same_v<T, float>) return sqrtf(v); else return sqrt(v); }
template <class T> __device__ inline T d_abs(T v) { if constexpr (std::is_same_v<T, float>) return fabsf(v); else return fabs(v); }
template <class T> __device__ inline T d_tanh(T v) { if constexpr (std::is_same_v<T, float>) return tanhf(v); else return tanh(v); }
template <class T> __device__ inline T d_erf(T v) { if constexpr (std::is_same_v<T, float>) return erff(v); else return erf(v); }
template <class T> __device__ inline T d_pow(T a, T b) { if constexpr (std::is_same_v<T, float>) return powf(a, b); else return pow(a, b); }
template <class T> __device__ inline T d_inf() { if constexpr (std::is_same_v<T, float>) return __int_as_float(0x7f800000); else return __longlong_as_double(0x7ff0000000000000LL); }

// ---- reductions across a warp and a block (blockDim.x a multiple of 32, at most 1024)

template <class T>
__device__ inline T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <class T>
__device__ inline T warp_max(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the whole block, returned to every thread. `scratch` holds 32 values; the
// function synchronizes before reusing it, so it may be called several times in a row.
template <class T>
__device__ inline T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // earlier readers of scratch are done
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = lane < warps ? scratch[lane] : T(0);
  return warp_sum(total);
}

}  // namespace shallow::cuda
