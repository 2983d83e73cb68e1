// The GEMM epilogue as a pass of its own, for products computed by cuBLAS: C = act(C + bias)
// in place over a batch of M x N matrices (row stride ldc, batch stride stride_c). One
// grid-stride loop over every element in 64-bit indices; consecutive threads take
// consecutive columns of a row (coalesced).
#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

template <class T>
__global__ void gemm_bias_act_kernel(int64_t total, int64_t M, int64_t N, T* C, int64_t ldc,
                                     int64_t stride_c, const T* bias, bool bias_per_row,
                                     GemmActivation act) {
  using Acc = typename DeviceEpilogue<T>::Acc;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t col = i % N, row = (i / N) % M, b = i / (N * M);
    T* c = C + b * stride_c + row * ldc + col;
    Acc v = Acc(widen(*c));
    if (bias != nullptr) v += Acc(widen(bias[bias_per_row ? row : col]));
    *c = convert<T>(apply_activation(act, v));
  }
}

}  // namespace

template <class T>
Status gemm_bias_act(int64_t batch, int64_t M, int64_t N, T* C, int64_t ldc, int64_t stride_c,
                     const T* bias, bool bias_per_row, GemmActivation act, cudaStream_t stream) {
  const int64_t total = batch * M * N;
  if (total == 0 || (bias == nullptr && act == GemmActivation::none)) return ok_status();
  gemm_bias_act_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      total, M, N, C, ldc, stride_c, bias, bias_per_row, act);
  return launch_status("gemm_bias_act_kernel");
}

#define SH_GEMM_BIAS_ACT_INSTANTIATE(T)                                                       \
  template Status gemm_bias_act<T>(int64_t, int64_t, int64_t, T*, int64_t, int64_t, const T*, \
                                   bool, GemmActivation, cudaStream_t);
SH_GEMM_BIAS_ACT_INSTANTIATE(float)
SH_GEMM_BIAS_ACT_INSTANTIATE(double)
SH_GEMM_BIAS_ACT_INSTANTIATE(bf16)

}  // namespace shallow::cuda
