// Matrix products and the optimizer step on CUDA tensors.
#include "engine/cuda/api.h"
#include "engine/cuda/gemm_ops.h"
#include "engine/cuda/ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/optim.h"

namespace shallow::gpu {
namespace {

// Calls f with a value of the storage type of a GEMM dtype (bf16 for bf16).
template <class F>
void dispatch_gemm_type(DType dt, const char* name, F&& f) {
  switch (dt) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::bf16: return f(bf16{});
    default: break;
  }
  throw Error(str_cat(name, ": no CUDA GEMM for ", dtype_name(dt)));
}

}  // namespace

void gemm_ex(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
             double alpha, const Tensor& a, int64_t lda, int64_t stride_a, const Tensor& b,
             int64_t ldb, int64_t stride_b, double beta, Tensor& c, int64_t ldc, int64_t stride_c,
             const GemmEpilogueArgs& epilogue, const char* name) {
  cudaStream_t stream = stream_for(c.device(), name);
  const bool tiled = cuda_gemm() == CudaGemm::tiled;
  dispatch_gemm_type(c.dtype(), name, [&](auto type_tag) {
    using T = decltype(type_tag);
    using S = cuda::gemm_scale_t<T>;
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* pc = static_cast<T*>(c.raw_data());
    cpu::GemmEpilogue<T> ep;
    ep.bias = epilogue.bias.defined() ? static_cast<const T*>(epilogue.bias.raw_data()) : nullptr;
    ep.bias_per_row = epilogue.bias_per_row;
    ep.act = epilogue.act;
    if (tiled) {
      check(cuda::gemm_tiled<T>(batch, trans_a, trans_b, M, N, K, S(alpha), pa, lda, stride_a, pb,
                                ldb, stride_b, S(beta), pc, ldc, stride_c, stream, ep),
            name);
    } else {
      check(cuda::gemm_cublas<T>(cublas_for(c.device(), name), batch, trans_a, trans_b, M, N, K,
                                 S(alpha), pa, lda, stride_a, pb, ldb, stride_b, S(beta), pc, ldc,
                                 stride_c, stream, ep),
            name);
    }
  });
}

const char* tiled_gemm_kernel(int64_t batch, const Tensor& a, int64_t lda, int64_t stride_a,
                              const Tensor& b, int64_t ldb, int64_t stride_b) {
  const char* kernel = nullptr;
  dispatch_gemm_type(a.dtype(), "tiled_gemm_kernel", [&](auto type_tag) {
    using T = decltype(type_tag);
    kernel = cuda::gemm_tiled_kernel_name(cuda::gemm_tiled_kernel<T>(
        batch, static_cast<const T*>(a.raw_data()), lda, stride_a,
        static_cast<const T*>(b.raw_data()), ldb, stride_b));
  });
  return kernel;
}

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  const Tensor& a, int64_t lda, int64_t stride_a, const Tensor& b, int64_t ldb,
                  int64_t stride_b, Tensor& out, const char* name) {
  gemm_ex(batch, trans_a, trans_b, M, N, K, 1.0, a, lda, stride_a, b, ldb, stride_b, 0.0, out, N,
          M * N, GemmEpilogueArgs{}, name);
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
