#include "engine/ops/linear_fused.h"

#include "engine/autograd.h"
#include "engine/cuda/gemm_ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg_bf16.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/gemm.h"

namespace shallow {
namespace {

cpu::GemmActivation gemm_activation(LinearAct act) {
  switch (act) {
    case LinearAct::none:
      return cpu::GemmActivation::none;
    case LinearAct::relu:
      return cpu::GemmActivation::relu;
    case LinearAct::gelu:
      return cpu::GemmActivation::gelu;
    case LinearAct::gelu_tanh:
      return cpu::GemmActivation::gelu_tanh;
    case LinearAct::quick_gelu:
      return cpu::GemmActivation::quick_gelu;
  }
  return cpu::GemmActivation::none;
}

void check_linear_shapes(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const char* op) {
  SH_CHECK(weight.dim() == 2, op, ": weight must be 2-D [out, in], got ",
           shape_str(weight.shape()));
  SH_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), op, ": input ", shape_str(x.shape()),
           " does not match weight ", shape_str(weight.shape()), " (in features ", weight.size(1),
           ")");
  SH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), op, ": bias ",
           shape_str(bias.shape()), " does not match weight ", shape_str(weight.shape()));
}

}  // namespace

bool fused_linear_applies(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (needs_record({&x, &weight, &bias})) return false;
  const bool on_cuda = x.device().is_cuda();
  // bf16 on the CPU has its own path (linear_bf16); on CUDA the GEMM takes bf16 as it is.
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64 && !(on_cuda && x.dtype() == DType::bf16))
    return false;
  for (const Tensor* t : {&x, &weight, &bias})
    if (t->defined() && (t->dtype() != x.dtype() || t->device() != x.device())) return false;
  // An empty inner dimension on CUDA: the unfused ops handle it (matmul fills zeros).
  if (on_cuda && (x.dim() == 0 || x.size(-1) == 0)) return false;
  return true;
}

Tensor fused_linear(const Tensor& x, const Tensor& weight, const Tensor& bias, LinearAct act) {
  check_linear_shapes(x, weight, bias, "linear");
  const int64_t in = weight.size(1), out_features = weight.size(0);
  const Tensor x2 = x.reshape({-1, in}).contiguous();
  // The weight is read in place as stored, [out, in] (op(B) = W^T) or transposed.
  Tensor w = weight;
  bool trans_w = true;
  int64_t ldw = w.strides()[0];
  if (w.strides()[1] != 1 || ldw < std::max<int64_t>(1, in)) {
    if (w.strides()[0] == 1 && w.strides()[1] >= std::max<int64_t>(1, out_features)) {
      trans_w = false;
      ldw = w.strides()[1];
    } else {
      w = w.contiguous();
      ldw = in;
    }
  }
  const Tensor b = bias.defined() ? bias.contiguous() : bias;
  const int64_t rows = x2.size(0);
  Tensor y = Tensor::empty({rows, out_features}, x.dtype(), x.device());
  if (x.device().is_cuda()) {
    // The bias and activation are applied by the GEMM kernel's epilogue (CudaGemm::tiled), or
    // in one pass after cuBLAS (CudaGemm::cublas).
    gpu::GemmEpilogueArgs ep;
    ep.bias = b;
    ep.act = gemm_activation(act);
    gpu::gemm_ex(1, false, trans_w, rows, out_features, in, 1.0, x2, in, 0, w, ldw, 0, 0.0, y,
                 out_features, 0, ep, "linear");
    Shape out_shape = x.shape();
    out_shape.back() = out_features;
    return y.reshape(out_shape);
  }
  SH_DISPATCH_FLOAT(x.dtype(), "linear", [&] {
    cpu::GemmEpilogue<scalar_t> ep;
    ep.bias = b.defined() ? b.data<scalar_t>() : nullptr;
    ep.act = gemm_activation(act);
    cpu::gemm_ex<scalar_t>(false, trans_w, rows, out_features, in, scalar_t(1), x2.data<scalar_t>(),
                           in, w.data<scalar_t>(), ldw, scalar_t(0), y.data<scalar_t>(),
                           out_features, ep);
  });
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  return y.reshape(out_shape);
}

bool fused_linear_trains(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (!bias.defined() || !needs_record({&x, &weight, &bias})) return false;
  if (!x.device().is_cpu() || (x.dtype() != DType::f32 && x.dtype() != DType::f64)) return false;
  for (const Tensor* t : {&weight, &bias})
    if (t->dtype() != x.dtype() || t->device() != x.device()) return false;
  return true;
}

Tensor fused_linear_with_grad(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear_shapes(x, weight, bias, "linear");
  Tensor y;
  {
    NoGrad no_grad;
    y = fused_linear(x, weight, bias, LinearAct::none);
  }
  const int64_t in = weight.size(1), out = weight.size(0);
  const Tensor x2 = x.detach().reshape({-1, in}), w = weight.detach();
  const Shape x_shape = x.shape(), bias_shape = bias.shape();
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad(),
             need_b = bias.requires_grad();
  // The same products and sum as matmul(x, weight.t()) + bias would take backward.
  record(y, "linear", {&x, &weight, &bias}, [=](const Tensor& g) -> std::vector<Tensor> {
    const Tensor g2 = g.reshape({-1, out});
    Tensor gx, gw, gb;
    if (need_x) gx = matmul(g2, w).reshape(x_shape);
    if (need_w) gw = matmul(g2.t(), x2);
    if (need_b) gb = sum_to_shape(g2, bias_shape);
    return {gx, gw, gb};
  });
  return y;
}

Tensor linear_act(const Tensor& x, const Tensor& weight, const Tensor& bias, LinearAct act) {
  if (fused_linear_applies(x, weight, bias)) return fused_linear(x, weight, bias, act);
  // bf16 inference on the CPU: the activation in the bf16 GEMM's store, like the f32 one.
  if (bf16_gemm_applies({&x, &weight, &bias}) && weight.dim() == 2 && x.dim() >= 1 &&
      x.size(-1) == weight.size(1))
    return linear_bf16(x, weight, bias, gemm_activation(act));
  // With a gradient to record (or another device or dtype): the ops one after the other, each
  // with its own backward.
  const Tensor y = linear(x, weight, bias);
  switch (act) {
    case LinearAct::none:
      return y;
    case LinearAct::relu:
      return relu(y);
    case LinearAct::gelu:
      return gelu(y);
    case LinearAct::gelu_tanh:
      return gelu(y, "tanh");
    case LinearAct::quick_gelu:
      return quick_gelu(y);
  }
  return y;
}

}  // namespace shallow
