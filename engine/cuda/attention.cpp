// Fused attention on CUDA tensors: the engine's operand descriptions turned into the kernels'
// arguments, launched on the device's stream.
#include "engine/cuda/attention_ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/attention.h"

namespace shallow::gpu {
namespace {

static_assert(kFusedAttentionMaxHeadDim == cuda::kMaxHeadDim);

template <class T>
cuda::AttentionOperand<T> operand_of(const AttentionOperand& o) {
  cuda::AttentionOperand<T> r;
  r.data = static_cast<const T*>(o.data.raw_data());
  r.layout = cuda::BatchLayout{o.inner_count, o.outer_stride, o.inner_stride};
  r.ld = o.ld;
  return r;
}

template <class T>
cuda::FusedAttentionArgs<T> args_of(const FusedAttention& a) {
  cuda::FusedAttentionArgs<T> r;
  r.batch = a.batch, r.Lq = a.Lq, r.Lk = a.Lk, r.D = int(a.D);
  r.scale = float(a.scale);
  r.causal = a.causal;
  r.q = operand_of<T>(a.q), r.k = operand_of<T>(a.k), r.v = operand_of<T>(a.v);
  return r;
}

template <class T>
T* data_or_null(Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

// Calls f with a value of the element type of `dtype` (float or bf16).
template <class F>
void with_type(DType dtype, const char* name, F&& f) {
  switch (dtype) {
    case DType::f32: return f(float{});
    case DType::bf16: return f(bf16{});
    default: break;
  }
  throw Error(str_cat(name, ": no fused CUDA attention for ", dtype_name(dtype)));
}

}  // namespace

void fused_attention_forward(const FusedAttention& a, Tensor& out, Tensor& lse, const char* name) {
  cudaStream_t stream = stream_for(out.device(), name);
  with_type(out.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    check(cuda::fused_attention_forward<T>(args_of<T>(a), static_cast<T*>(out.raw_data()),
                                           lse.data<float>(), stream),
          name);
  });
}

void fused_attention_backward(const FusedAttention& a, const Tensor& out, const Tensor& lse,
                              const Tensor& grad_out, Tensor& gq, Tensor& gk, Tensor& gv,
                              const char* name) {
  cudaStream_t stream = stream_for(out.device(), name);
  // D_i = dO_i . O_i per query row; freed at once, which the stream order makes safe.
  Tensor row_dot = Tensor::empty({a.batch * a.Lq}, DType::f32, out.device());
  with_type(out.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    check(cuda::fused_attention_backward<T>(
              args_of<T>(a), static_cast<const T*>(out.raw_data()), lse.data<float>(),
              static_cast<const T*>(grad_out.raw_data()), row_dot.data<float>(),
              data_or_null<T>(gq), data_or_null<T>(gk), data_or_null<T>(gv), stream),
          name);
  });
}

}  // namespace shallow::gpu
