// Unary elementwise ops: one kernel call forward, one backward.
#include "engine/cuda/ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "kernels/cpu/unary.h"

namespace shallow {
namespace {

Tensor unary_op(cpu::UnaryOp op, const Tensor& x_in, const char* name, cpu::UnaryParams p = {}) {
  check_float(x_in, name);
  if (is_half(x_in.dtype()) && !native_half_forward(x_in, {&x_in}))
    return unary_op(op, x_in.to(DType::f32), name, p).to(x_in.dtype());
  Tensor x = x_in.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    gpu::unary(op, x, y, p, name);
  } else {
    SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
      cpu::unary<scalar_t>(op, x.numel(), x.data<scalar_t>(), y.data<scalar_t>(), p);
    });
  }
  if (needs_record({&x_in})) {
    Tensor saved_y = y.detach();
    record(y, name, {&x_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
      if (x.device().is_cuda()) {
        gpu::unary_backward(op, x, saved_y, g, gx, p, name);
        return {gx};
      }
      SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
        cpu::unary_backward<scalar_t>(op, x.numel(), x.data<scalar_t>(), saved_y.data<scalar_t>(),
                                      g.data<scalar_t>(), gx.data<scalar_t>(), p);
      });
      return {gx};
    });
  }
  return y;
}

}  // namespace

Tensor neg(const Tensor& x) { return unary_op(cpu::UnaryOp::neg, x, "neg"); }
Tensor exp(const Tensor& x) { return unary_op(cpu::UnaryOp::exp, x, "exp"); }
Tensor log(const Tensor& x) { return unary_op(cpu::UnaryOp::log, x, "log"); }
Tensor sqrt(const Tensor& x) { return unary_op(cpu::UnaryOp::sqrt, x, "sqrt"); }
Tensor rsqrt(const Tensor& x) { return unary_op(cpu::UnaryOp::rsqrt, x, "rsqrt"); }
Tensor abs(const Tensor& x) { return unary_op(cpu::UnaryOp::abs, x, "abs"); }
Tensor tanh(const Tensor& x) { return unary_op(cpu::UnaryOp::tanh, x, "tanh"); }
Tensor sigmoid(const Tensor& x) { return unary_op(cpu::UnaryOp::sigmoid, x, "sigmoid"); }
Tensor relu(const Tensor& x) { return unary_op(cpu::UnaryOp::relu, x, "relu"); }
Tensor quick_gelu(const Tensor& x) { return unary_op(cpu::UnaryOp::quick_gelu, x, "quick_gelu"); }

Tensor gelu(const Tensor& x, const std::string& approximate) {
  SH_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be 'none' or 'tanh', got '",
           approximate, "'");
  return unary_op(approximate == "none" ? cpu::UnaryOp::gelu : cpu::UnaryOp::gelu_tanh, x, "gelu");
}

Tensor elu(const Tensor& x, double alpha) { return unary_op(cpu::UnaryOp::elu, x, "elu", {alpha, 0}); }

Tensor softplus(const Tensor& x, double beta, double threshold) {
  SH_CHECK(beta > 0, "softplus: beta must be positive, got ", beta);
  return unary_op(cpu::UnaryOp::softplus, x, "softplus", {beta, threshold});
}

}  // namespace shallow
