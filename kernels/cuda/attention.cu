// Entry points of the fused attention: argument checks, then the kernel family for the dtype
// and the device: tensor cores for bf16 from sm_80 on (the pipelined kernels for aligned
// operands; the first ones for others, the backward for head dims up to kMmaBackwardMaxD),
// and for f32 (three TF32 products each, forward and backward, aligned operands, head dims up
// to kTf32MaxD); FMA tiles otherwise.
#include "kernels/cuda/attention.h"

#include <cstdlib>
#include <string>

#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

template <class T>
Status check_args(const FusedAttentionArgs<T>& a) {
  if (a.D < 1 || a.D > kMaxHeadDim)
    return Status{"fused attention", "head dim " + std::to_string(a.D) + " is outside 1.." +
                                         std::to_string(kMaxHeadDim)};
  if (a.batch < 0 || a.Lq < 0 || a.Lk < 0)
    return Status{"fused attention", "negative batch or length"};
  return ok_status();
}

// SHALLOW_CUDA_ATTENTION, read at each call: "simt" runs bf16 and f32 on the FMA tiles (the
// path of older GPUs); "mma_v1" the first tensor-core kernels (attention_mma.cu,
// attention_mma_backward.cu) instead of the pipelined ones; "mma_r1" / "mma_r2" the pipelined
// forward with 16 / 32 query rows per warp (else chosen by size). The tests and the benchmark
// use each.
bool attention_choice_is(const char* name) {
  const char* choice = std::getenv("SHALLOW_CUDA_ATTENTION");
  return choice && std::string(choice) == name;
}

// Whether the tensor-core kernels run: the current device has bf16 and TF32 mma (compute
// capability 8.0 or newer) and the FMA tiles were not asked for.
bool has_mma() {
  if (attention_choice_is("simt")) return false;
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
    return false;
  return major >= 8;
}

// Query rows per warp of the pipelined forward, in slices of 16: 2 (blocks of 128 rows, half
// the shared-memory reads per product) where that still gives at least 4 blocks per
// multiprocessor, else 1 (twice the blocks: at batch 8 of the ViT, 192 blocks of 128 rows
// would leave an H100's 132 multiprocessors short of work, and 1 measured faster). "mma_r1"
// and "mma_r2" force either.
int forward_slices_per_warp(const FusedAttentionArgs<cpu::bf16>& a) {
  if (attention_choice_is("mma_r1")) return 1;
  if (attention_choice_is("mma_r2")) return 2;
  const int64_t blocks_of_128 = a.batch * ((a.Lq + 127) / 128);
  return a.D <= 64 && blocks_of_128 >= 4 * int64_t(multiprocessors()) ? 2 : 1;
}

}  // namespace

template <class T>
Status fused_attention_forward(const FusedAttentionArgs<T>& a, T* out, float* lse,
                               cudaStream_t stream) {
  Status st = check_args(a);
  if (!st.ok()) return st;
  if (a.batch == 0 || a.Lq == 0) return ok_status();
  if constexpr (std::is_same_v<T, cpu::bf16>) {
    if (has_mma()) {
      if (!attention_choice_is("mma_v1") && attention_detail::can_forward_mma_pipelined(a, out))
        return attention_detail::forward_mma_pipelined(a, out, lse, stream,
                                                       forward_slices_per_warp(a));
      return attention_detail::forward_mma(a, out, lse, stream);
    }
  } else if constexpr (std::is_same_v<T, float>) {
    if (has_mma() && attention_detail::can_forward_tf32(a, out))
      return attention_detail::forward_tf32(a, out, lse, stream);
  }
  return attention_detail::forward_simt(a, out, lse, stream);
}

template <class T>
Status fused_attention_backward(const FusedAttentionArgs<T>& a, const T* out, const float* lse,
                                const T* grad_out, float* row_dot, T* gq, T* gk, T* gv,
                                cudaStream_t stream) {
  Status st = check_args(a);
  if (!st.ok()) return st;
  if (a.batch == 0) return ok_status();
  if constexpr (std::is_same_v<T, cpu::bf16>) {
    if (has_mma()) {
      if (!attention_choice_is("mma_v1") &&
          attention_detail::can_backward_mma_pipelined(a, grad_out, gq, gk, gv))
        return attention_detail::backward_mma_pipelined(a, out, lse, grad_out, row_dot, gq, gk,
                                                        gv, stream);
      if (a.D <= attention_detail::kMmaBackwardMaxD)
        return attention_detail::backward_mma(a, out, lse, grad_out, row_dot, gq, gk, gv, stream);
    }
  } else if constexpr (std::is_same_v<T, float>) {
    if (has_mma() && attention_detail::can_backward_tf32(a, grad_out, gq, gk, gv))
      return attention_detail::backward_tf32(a, out, lse, grad_out, row_dot, gq, gk, gv, stream);
  }
  return attention_detail::backward_simt(a, out, lse, grad_out, row_dot, gq, gk, gv, stream);
}

#define SH_INSTANTIATE(T)                                                                     \
  template Status fused_attention_forward<T>(const FusedAttentionArgs<T>&, T*, float*,       \
                                             cudaStream_t);                                  \
  template Status fused_attention_backward<T>(const FusedAttentionArgs<T>&, const T*,        \
                                              const float*, const T*, float*, T*, T*, T*,    \
                                              cudaStream_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(cpu::bf16)
#undef SH_INSTANTIATE

}  // namespace shallow::cuda
