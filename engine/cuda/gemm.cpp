// Matrix products and the optimizer step on CUDA tensors.
#include "engine/cuda/api.h"
#include "engine/cuda/ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/optim.h"

namespace shallow::gpu {

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  const Tensor& a, int64_t lda, int64_t stride_a, const Tensor& b, int64_t ldb,
                  int64_t stride_b, Tensor& out, const char* name) {
  cudaStream_t stream = stream_for(out.device(), name);
  const bool tiled = cuda_gemm() == CudaGemm::tiled;
  auto run = [&](auto type_tag) {
    using T = decltype(type_tag);
    using S = cuda::gemm_scale_t<T>;
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* pc = static_cast<T*>(out.raw_data());
    if (tiled) {
      check(cuda::gemm_tiled<T>(batch, trans_a, trans_b, M, N, K, S(1), pa, lda, stride_a, pb, ldb,
                                stride_b, S(0), pc, N, M * N, stream),
            name);
    } else {
      check(cuda::gemm_cublas<T>(cublas_for(out.device(), name), batch, trans_a, trans_b, M, N, K,
                                 S(1), pa, lda, stride_a, pb, ldb, stride_b, S(0), pc, N, M * N,
                                 stream),
            name);
    }
  };
  switch (out.dtype()) {
    case DType::f32: return run(float{});
    case DType::f64: return run(double{});
    case DType::bf16: return run(bf16{});
    default: break;
  }
  throw Error(str_cat(name, ": no CUDA GEMM for ", dtype_name(out.dtype())));
}

void adam_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                 Tensor& max_exp_avg_sq, const cpu::AdamHyper& h, const char* name) {
  cudaStream_t stream = stream_for(param.device(), name);
  SH_DISPATCH_FLOAT(param.dtype(), name, [&] {
    check(cuda::adam_update<scalar_t>(param.numel(), param.data<scalar_t>(), grad.data<scalar_t>(),
                                      exp_avg.data<scalar_t>(), exp_avg_sq.data<scalar_t>(),
                                      max_exp_avg_sq.defined() ? max_exp_avg_sq.data<scalar_t>()
                                                               : nullptr,
                                      h, stream),
          name);
  });
}

}  // namespace shallow::gpu
