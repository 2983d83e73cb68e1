#include "engine/ops/linalg.h"

#include "engine/cuda/ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg_bf16.h"
#include "engine/ops/linear_fused.h"
#include "engine/ops/matrix_layout.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/gemm.h"

namespace shallow {
namespace {

// cuBLAS reads a row-major matrix stored [rows, cols] only with a row stride of at least
// max(1, cols); the CPU kernel and the tiled CUDA kernel take any stride.
bool cublas_can_read(const Tensor& t, const MatLayout& l) {
  const int64_t n = t.dim();
  const int64_t stored_cols = l.trans ? t.shape()[size_t(n - 2)] : t.shape()[size_t(n - 1)];
  return l.ld >= std::max<int64_t>(1, stored_cols);
}

// a [..., M, K] @ b [..., K, N] with a, b at least 2-D and of one float dtype.
Tensor matmul_nd(const Tensor& a_in, const Tensor& b_in) {
  MatmulOperands op = matmul_operands(a_in, b_in);
  if (op.a.device().is_cuda()) {
    if (!cublas_can_read(op.a, op.la)) op.make_a_contiguous();
    if (!cublas_can_read(op.b, op.lb)) op.make_b_contiguous();
  }
  const Tensor &a = op.a, &b = op.b;
  const int64_t M = op.M, N = op.N, K = op.K;
  Tensor out = Tensor::empty(op.out_shape, a.dtype(), a.device());
  if (out.device().is_cuda()) {
    if (K == 0) {  // an empty sum; neither GEMM is asked to do it
      out.fill_(0.0);
      return out;
    }
    gpu::gemm_batched(op.batches, op.la.trans, op.lb.trans, M, N, K, a, op.la.ld,
                      op.batch_stride_a, b, op.lb.ld, op.batch_stride_b, out, "matmul");
    return out;
  }
  SH_DISPATCH_FLOAT(a.dtype(), "matmul", [&] {
    cpu::gemm_batched<scalar_t>(op.batches, op.la.trans, op.lb.trans, M, N, K, scalar_t(1),
                                static_cast<const scalar_t*>(a.raw_data()), op.la.ld,
                                op.batch_stride_a, static_cast<const scalar_t*>(b.raw_data()),
                                op.lb.ld, op.batch_stride_b, scalar_t(0), out.data<scalar_t>(), N,
                                M * N);
  });
  return out;
}

// Whether a 2-D tensor is the transpose of a contiguous matrix: columns of stride 1 laid one
// after another.
bool is_transposed_contiguous(const Tensor& t) {
  return t.size(0) > 1 && t.size(1) > 1 && t.strides()[0] == 1 && t.strides()[1] == t.size(0);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_float(a, "matmul");
  check_same_dtype(a, b, "matmul");
  check_same_device(a, b, "matmul");
  SH_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least one dim, got ",
           shape_str(a.shape()), " and ", shape_str(b.shape()));
  const int64_t ka = a.size(-1), kb = b.size(b.dim() == 1 ? 0 : -2);
  SH_CHECK(ka == kb, "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
           " cannot be multiplied (", ka, " vs ", kb, ")");
  if (bf16_gemm_applies({&a, &b})) return matmul_bf16(a, b);  // CPU bf16 inference
  // bf16 on CUDA goes to the GEMM as it is (f32 accumulation); other half cases compute in f32.
  const bool native_bf16 = a.device().is_cuda() && a.dtype() == DType::bf16;
  if (is_half(a.dtype()) && !native_bf16)
    return matmul(a.to(DType::f32), b.to(DType::f32)).to(a.dtype());
  if (a.dim() == 1 || b.dim() == 1) {
    // A 1-D operand becomes a [1, K] or [K, 1] matrix; the dim it gained is removed after
    // (both of them for a dot product, which gives a scalar).
    Tensor out = matmul(a.dim() == 1 ? a.unsqueeze(0) : a, b.dim() == 1 ? b.unsqueeze(1) : b);
    Shape s = out.shape();
    const size_t n = s.size();
    if (b.dim() == 1) s.erase(s.begin() + std::ptrdiff_t(n - 1));
    if (a.dim() == 1) s.erase(s.begin() + std::ptrdiff_t(n - 2));
    return out.reshape(s);
  }
  Tensor out = matmul_nd(a, b);
  record(out, "matmul", {&a, &b}, [a, b](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga, gb;
    if (a.requires_grad()) ga = sum_to_shape(matmul(g, b.detach().transpose(-1, -2)), a.shape());
    if (b.requires_grad()) {
      if (a.dim() == 2 && b.dim() == 2 && is_transposed_contiguous(b)) {
        // b is the transpose of a contiguous matrix (a linear layer's weight.t()): its
        // gradient is made in that matrix's layout, (g^T a)^T, so that it reaches the weight
        // as a contiguous tensor instead of a transpose that would be copied element by element.
        gb = matmul(g.transpose(0, 1), a.detach()).transpose(0, 1);
      } else {
        gb = sum_to_shape(matmul(a.detach().transpose(-1, -2), g), b.shape());
      }
    }
    return {ga, gb};
  });
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  SH_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out, in], got ", shape_str(weight.shape()));
  SH_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", shape_str(x.shape()),
           " does not match weight ", shape_str(weight.shape()), " (in features ", weight.size(1), ")");
  if (bf16_gemm_applies({&x, &weight, &bias})) return linear_bf16(x, weight, bias);
  // Inference in f32/f64: the bias is added by the gemm as it writes each tile.
  if (fused_linear_applies(x, weight, bias)) return fused_linear(x, weight, bias, LinearAct::none);
  if (fused_linear_trains(x, weight, bias)) return fused_linear_with_grad(x, weight, bias);
  Shape out_shape = x.shape();
  out_shape.back() = weight.size(0);
  Tensor y = matmul(x.reshape({-1, weight.size(1)}), weight.t());
  if (bias.defined()) {
    SH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias ",
             shape_str(bias.shape()), " does not match weight ", shape_str(weight.shape()));
    y = add(y, bias);
  }
  return y.reshape(out_shape);
}

}  // namespace shallow
