#include "engine/ops/linalg_bf16.h"

#include <optional>
#include <vector>

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/matrix_layout.h"
#include "kernels/cpu/gemm_bf16.h"

namespace shallow {
namespace {

const cpu::bf16* bf16_data(const Tensor& t) { return static_cast<const cpu::bf16*>(t.raw_data()); }

// act(a [..., M, K] @ b [..., K, N] (+ bias)), both at least 2-D, batch dims broadcast; bf16
// out with an optional f32 bias over N.
Tensor matmul_nd(const Tensor& a_in, const Tensor& b_in, const float* bias,
                 cpu::GemmActivation act = cpu::GemmActivation::none) {
  const MatmulOperands op = matmul_operands(a_in, b_in);
  Tensor out = Tensor::empty(op.out_shape, DType::bf16, op.a.device());
  cpu::gemm_bf16_batched<cpu::bf16>(op.batches, op.la.trans, op.lb.trans, op.M, op.N, op.K,
                                    bf16_data(op.a), op.la.ld, op.batch_stride_a,
                                    bf16_data(op.b), op.lb.ld, op.batch_stride_b, bias,
                                    out.data<bf16>(), op.N, op.M * op.N, act);
  return out;
}

}  // namespace

bool bf16_gemm_applies(std::initializer_list<const Tensor*> operands) {
  for (const Tensor* t : operands)
    if (t->defined() && (t->dtype() != DType::bf16 || !t->device().is_cpu())) return false;
  return !needs_record(operands);
}

Tensor matmul_bf16(const Tensor& a, const Tensor& b) {
  if (a.dim() >= 2 && b.dim() >= 2) return matmul_nd(a, b, nullptr);
  // A 1-D operand becomes a [1, K] or [K, 1] matrix, and the dim it gained is removed after.
  const Tensor out = matmul_nd(a.dim() == 1 ? a.unsqueeze(0) : a, b.dim() == 1 ? b.unsqueeze(1) : b,
                               nullptr);
  Shape s = out.shape();
  const size_t n = s.size();
  if (b.dim() == 1) s.erase(s.begin() + std::ptrdiff_t(n - 1));
  if (a.dim() == 1) s.erase(s.begin() + std::ptrdiff_t(n - 2));
  return out.reshape(s);
}

Tensor linear_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias,
                   cpu::GemmActivation act) {
  std::vector<float> bias_f32;
  if (bias.defined()) {
    SH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias ",
             shape_str(bias.shape()), " does not match weight ", shape_str(weight.shape()));
    bias_f32 = bias.to_vector<float>();
  }
  // The bias joins the f32 sum, so the output is rounded to bf16 once, as torch's addmm does
  // (with an activation, after it: one rounding where the ops one after the other make two).
  Shape out_shape = x.shape();
  out_shape.back() = weight.size(0);
  const Tensor y = matmul_nd(x.reshape({-1, weight.size(1)}), weight.t(),
                             bias.defined() ? bias_f32.data() : nullptr, act);
  return y.reshape(out_shape);
}

}  // namespace shallow
