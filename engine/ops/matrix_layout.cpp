#include "engine/ops/matrix_layout.h"

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"

namespace shallow {

std::optional<MatLayout> mat_layout(const Tensor& t) {
  const int64_t n = t.dim();
  const int64_t rows = t.shape()[size_t(n - 2)], cols = t.shape()[size_t(n - 1)];
  const int64_t sr = t.strides()[size_t(n - 2)], sc = t.strides()[size_t(n - 1)];
  if (sc == 1 || cols == 1) return MatLayout{false, rows == 1 ? cols : sr};
  if (sr == 1 || rows == 1) return MatLayout{true, cols == 1 ? rows : sc};
  return std::nullopt;
}

std::optional<int64_t> batch_stride(const Tensor& t, int64_t batch_dims) {
  int64_t stride = 0, expected = 0;
  bool first = true;
  for (int64_t d = batch_dims - 1; d >= 0; --d) {
    const int64_t s = t.shape()[size_t(d)], st = t.strides()[size_t(d)];
    if (s == 1) continue;
    if (first) { stride = st; expected = st * s; first = false; continue; }
    if (st != expected) return std::nullopt;
    expected = st * s;
  }
  return stride;
}

void MatmulOperands::make_a_contiguous() {
  a = a.contiguous();
  la = *mat_layout(a);
  batch_stride_a = *batch_stride(a, int64_t(out_shape.size()) - 2);
}

void MatmulOperands::make_b_contiguous() {
  b = b.contiguous();
  lb = *mat_layout(b);
  batch_stride_b = *batch_stride(b, int64_t(out_shape.size()) - 2);
}

MatmulOperands matmul_operands(const Tensor& a_in, const Tensor& b_in) {
  MatmulOperands op;
  op.M = a_in.size(-2);
  op.K = a_in.size(-1);
  op.N = b_in.size(-1);
  SH_CHECK(b_in.size(-2) == op.K, "matmul: shapes ", shape_str(a_in.shape()), " and ",
           shape_str(b_in.shape()), " cannot be multiplied (", op.K, " vs ", b_in.size(-2), ")");
  const Shape batch_a(a_in.shape().begin(), a_in.shape().end() - 2);
  const Shape batch_b(b_in.shape().begin(), b_in.shape().end() - 2);
  const Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  Shape sa = batch, sb = batch;
  sa.insert(sa.end(), {op.M, op.K});
  sb.insert(sb.end(), {op.K, op.N});
  op.out_shape = batch;
  op.out_shape.insert(op.out_shape.end(), {op.M, op.N});
  op.batches = shape_numel(batch);
  op.a = a_in.detach().expand(sa);
  op.b = b_in.detach().expand(sb);
  const int64_t nb = int64_t(batch.size());
  const auto la = mat_layout(op.a), lb = mat_layout(op.b);
  const auto ba = batch_stride(op.a, nb), bb = batch_stride(op.b, nb);
  if (la && ba) { op.la = *la; op.batch_stride_a = *ba; } else { op.make_a_contiguous(); }
  if (lb && bb) { op.lb = *lb; op.batch_stride_b = *bb; } else { op.make_b_contiguous(); }
  return op;
}

}  // namespace shallow
