// scaled_dot_product_attention: checks and broadcasting here, the fused kernel in
// kernels/cpu/attention.cpp. Operands are read in place (any strides, as long as each row is
// contiguous), broadcast operands are not copied, and gradients of broadcast operands are
// summed back to their shapes.
//
// Where PyTorch differs or is silent: a row whose keys are all masked out gives zeros and no
// gradient (as PyTorch 2.15, which made the fixtures; older versions gave NaN); is_causal with
// a mask applies both (PyTorch refuses the pair); the mask gets no gradient.
//
// bf16 on the CPU without a mask, where nothing is recorded, runs the vdpbf16ps kernel of
// kernels/cpu/attention_bf16.h on the operands as they are (the probabilities rounded to bf16
// before their product with v); other half cases go through f32.
//
// On CUDA, f32 and bf16 without a mask (causal or not) with one head dim up to 128 for q, k
// and v run the fused kernels of kernels/cuda/attention.cu (bf16 directly, not through f32).
// Everything else (masks, f64, E != Ev, larger head dims) is composed from the unfused ops
// (matmul, softmax, ...), which keep their own autograd: correct, but the score matrix is
// materialized.
#include "engine/ops/attention.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "engine/cuda/attention_ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_bf16.h"

namespace shallow {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

// An operand broadcast to [batch..., rows, cols]: the element offset of each batch entry's
// matrix and the stride between its rows.
struct Placed {
  Tensor t;  // the expanded view (keeps the storage alive)
  std::vector<int64_t> offsets;
  int64_t row_stride = 0, col_stride = 0;
};

Placed place(const Tensor& x, const Shape& full, bool rows_must_be_contiguous) {
  Tensor t = x.detach();
  if (rows_must_be_contiguous && t.size(-1) > 1 && t.strides().back() != 1) t = t.contiguous();
  Placed p;
  p.t = t.expand(full);
  const size_t nb = full.size() - 2;
  const Shape& st = p.t.strides();
  p.row_stride = st[nb];
  p.col_stride = st[nb + 1];
  const int64_t batch = shape_numel(Shape(full.begin(), full.begin() + int64_t(nb)));
  p.offsets.resize(size_t(batch));
  for (int64_t b = 0; b < batch; ++b) {  // unravel b over the batch dims
    int64_t rest = b, off = 0;
    for (size_t d = nb; d-- > 0;) {
      off += (rest % full[d]) * st[d];
      rest /= full[d];
    }
    p.offsets[size_t(b)] = off;
  }
  return p;
}

Shape with_matrix(Shape batch, int64_t rows, int64_t cols) {
  batch.push_back(rows);
  batch.push_back(cols);
  return batch;
}

Shape leading(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

void check_mask(const Tensor& mask, const Tensor& q, const Shape& scores_shape) {
  SH_CHECK(mask.dtype() == DType::u8 || mask.dtype() == q.dtype(), kOp,
           ": mask must be u8 (1 = attend) or of the query's dtype ", dtype_name(q.dtype()),
           ", got ", dtype_name(mask.dtype()));
  check_same_device(q, mask, kOp);
  bool fits = mask.dim() <= int64_t(scores_shape.size());
  for (int64_t i = 1; fits && i <= mask.dim(); ++i) {
    const int64_t m = mask.shape()[size_t(mask.dim() - i)];
    fits = m == 1 || m == scores_shape[scores_shape.size() - size_t(i)];
  }
  SH_CHECK(fits, kOp, ": mask ", shape_str(mask.shape()), " is not broadcastable to the scores ",
           shape_str(scores_shape));
  SH_CHECK(!(mask.requires_grad() && grad_enabled()), kOp,
           ": no gradient for the mask; detach it or run under NoGrad");
}

// ---- CUDA

// x expanded to `full` ([batch..., L, E]) as the fused kernels read it in place: rows
// contiguous, the batch dims folded into at most two strided levels ([B, H] of a [B, L, H, E]
// projection viewed as [B, H, L, E] included). A layout that does not fold is copied.
gpu::AttentionOperand cuda_operand(const Tensor& x, const Shape& full) {
  auto fold = [&](const Tensor& t, gpu::AttentionOperand& op) {
    const size_t nb = full.size() - 2;
    std::vector<std::pair<int64_t, int64_t>> dims;  // (size, stride), outer to inner
    for (size_t d = 0; d < nb; ++d) {
      const int64_t size = t.shape()[d], stride = t.strides()[d];
      if (size == 1) continue;
      if (!dims.empty() && dims.back().second == size * stride)
        dims.back() = {dims.back().first * size, stride};  // steps evenly on from the outer dim
      else
        dims.emplace_back(size, stride);
    }
    if (dims.size() > 2) return false;
    op.data = t;
    op.ld = t.strides()[nb];
    op.inner_count = dims.empty() ? 1 : dims.back().first;
    op.inner_stride = dims.empty() ? 0 : dims.back().second;
    op.outer_stride = dims.size() == 2 ? dims.front().second : 0;
    return true;
  };
  Tensor t = x.detach();
  if (t.size(-1) > 1 && t.strides().back() != 1) t = t.contiguous();
  t = t.expand(full);
  gpu::AttentionOperand op;
  if (!fold(t, op)) fold(t.contiguous(), op);
  return op;
}

Tensor fused_attention_cuda(const Tensor& q, const Tensor& k, const Tensor& v, const Shape& batch,
                            int64_t Lq, int64_t Lk, int64_t E, bool is_causal, double scale) {
  gpu::FusedAttention a;
  a.batch = shape_numel(batch), a.Lq = Lq, a.Lk = Lk, a.D = E;
  a.scale = scale, a.causal = is_causal;
  a.q = cuda_operand(q, with_matrix(batch, Lq, E));
  a.k = cuda_operand(k, with_matrix(batch, Lk, E));
  a.v = cuda_operand(v, with_matrix(batch, Lk, E));
  Tensor out = Tensor::empty(with_matrix(batch, Lq, E), q.dtype(), q.device());
  Tensor lse = Tensor::empty({a.batch, Lq}, DType::f32, q.device());
  gpu::fused_attention_forward(a, out, lse, kOp);

  if (needs_record({&q, &k, &v})) {
    const bool need_q = q.requires_grad(), need_k = k.requires_grad(), need_v = v.requires_grad();
    const Shape q_shape = q.shape(), k_shape = k.shape(), v_shape = v.shape();
    const Tensor saved_out = out.detach();
    record(out, kOp, {&q, &k, &v}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor g = g_in.to(saved_out.dtype()).contiguous();
      const DType dt = saved_out.dtype();
      const Device dev = saved_out.device();
      Tensor gq = need_q ? Tensor::empty(with_matrix(batch, Lq, E), dt, dev) : Tensor();
      Tensor gk = need_k ? Tensor::empty(with_matrix(batch, Lk, E), dt, dev) : Tensor();
      Tensor gv = need_v ? Tensor::empty(with_matrix(batch, Lk, E), dt, dev) : Tensor();
      gpu::fused_attention_backward(a, saved_out, lse, g, gq, gk, gv, kOp);
      return {need_q ? sum_to_shape(gq, q_shape) : Tensor(),
              need_k ? sum_to_shape(gk, k_shape) : Tensor(),
              need_v ? sum_to_shape(gv, v_shape) : Tensor()};
    });
  }
  return out;
}

// The same contract from the unfused ops (they record their own gradients). A row whose keys
// are all masked out gives zeros and no gradient, as on the CPU: its scores are lifted to the
// lowest finite value before the softmax (no NaN from -inf - -inf) and its probabilities are
// multiplied by 0.
Tensor unfused_attention_cuda(const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& mask, bool is_causal, double scale, int64_t Lq,
                              int64_t Lk) {
  const DType dt = q.dtype();
  const Device dev = q.device();
  Tensor s = mul(matmul(q, k.transpose(-1, -2)), scale);
  if (!mask.defined() && !is_causal) return matmul(softmax(s, -1), v);
  if (mask.defined()) s = add(s, mask.dtype() == DType::u8 ? log(mask.to(dt)) : mask);  // log 0 = -inf
  if (is_causal) {
    std::vector<double> future(size_t(Lq * Lk), 0.0);
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t j = i + 1; j < Lk; ++j) future[size_t(i * Lk + j)] = -std::numeric_limits<double>::infinity();
    s = add(s, Tensor::from_vector<double>(future, {Lq, Lk}).to(dt).to(dev));
  }
  const double inf = std::numeric_limits<double>::infinity();
  const double lowest = dt == DType::f64 ? std::numeric_limits<double>::lowest()
                                         : double(std::numeric_limits<float>::lowest());
  const Tensor attends_any =
      gt(max(s.detach(), {-1}, true), Tensor::full({}, -inf, dt, dev));  // 1 or 0 per row
  const Tensor p = mul(softmax(maximum(s, Tensor::full({}, lowest, dt, dev)), -1), attends_any);
  return matmul(p, v);
}

// The kernels' view of placed operands (scale and mask left for the caller); the pointers stay
// valid while the Placed values live.
template <class T>
cpu::AttentionArgs<T> operand_args(const Placed& pq, const Placed& pk, const Placed& pv,
                                   int64_t batch, int64_t Lq, int64_t Lk, bool is_causal) {
  cpu::AttentionArgs<T> a;
  a.batch = batch, a.Lq = Lq, a.Lk = Lk, a.E = pq.t.size(-1), a.Ev = pv.t.size(-1);
  a.causal = is_causal;
  a.q = static_cast<const T*>(pq.t.raw_data()), a.q_offset = pq.offsets.data(), a.q_ld = pq.row_stride;
  a.k = static_cast<const T*>(pk.t.raw_data()), a.k_offset = pk.offsets.data(), a.k_ld = pk.row_stride;
  a.v = static_cast<const T*>(pv.t.raw_data()), a.v_offset = pv.offsets.data(), a.v_ld = pv.row_stride;
  return a;
}

// bf16 inference on the CPU without a mask: the vdpbf16ps kernel reads q, k and v as they are
// (kernels/cpu/attention_bf16.h) instead of converting them to f32 and the output back. An
// undefined tensor where it cannot run (no AVX512_BF16, an odd head dim, key rows too far
// apart for its 32-bit gathers): the conversions take over.
Tensor bf16_attention_cpu(const Tensor& q, const Tensor& k, const Tensor& v, const Shape& batch,
                          int64_t Lq, int64_t Lk, bool is_causal, double scale) {
  const int64_t E = q.size(-1), Ev = v.size(-1);
  if (!cpu::attention_bf16_available() || E % 2 != 0) return Tensor();
  const Placed pk = place(k, with_matrix(batch, Lk, E), true);
  if (std::abs(pk.row_stride) * (Lk + 16) + E >= (int64_t(1) << 30)) return Tensor();
  const Placed pq = place(q, with_matrix(batch, Lq, E), true);
  const Placed pv = place(v, with_matrix(batch, Lk, Ev), true);
  const auto a = operand_args<cpu::bf16>(pq, pk, pv, shape_numel(batch), Lq, Lk, is_causal);
  Tensor out = Tensor::empty(with_matrix(batch, Lq, Ev), DType::bf16);
  cpu::attention_forward_bf16(a, float(scale), static_cast<cpu::bf16*>(out.raw_data()));
  return out;
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask, bool is_causal,
                                    std::optional<double> scale) {
  check_float(q, kOp);
  check_same_dtype(q, k, kOp);
  check_same_dtype(q, v, kOp);
  check_same_device(q, k, kOp);
  check_same_device(q, v, kOp);
  SH_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2, kOp,
           ": q, k and v need at least 2 dims [..., L, E], got ", shape_str(q.shape()), ", ",
           shape_str(k.shape()), ", ", shape_str(v.shape()));
  const int64_t Lq = q.size(-2), E = q.size(-1), Lk = k.size(-2), Ev = v.size(-1);
  SH_CHECK(k.size(-1) == E && v.size(-2) == Lk, kOp, ": q ", shape_str(q.shape()), ", k ",
           shape_str(k.shape()), " and v ", shape_str(v.shape()),
           " do not fit q [..., Lq, E], k [..., Lk, E], v [..., Lk, Ev]");
  const Shape batch =
      broadcast_shapes(broadcast_shapes(leading(q), leading(k), kOp), leading(v), kOp);
  if (mask.defined()) check_mask(mask, q, with_matrix(batch, Lq, Lk));
  const double scale_value = scale.value_or(1.0 / std::sqrt(double(std::max<int64_t>(E, 1))));

  if (q.device().is_cuda() && !mask.defined() && gpu::fused_attention_supports(q.dtype(), E, Ev))
    return fused_attention_cuda(q, k, v, batch, Lq, Lk, E, is_causal, scale_value);

  if (q.dtype() == DType::bf16 && !mask.defined() && cpu_half_inference(q, {&q, &k, &v})) {
    Tensor out = bf16_attention_cpu(q, k, v, batch, Lq, Lk, is_causal, scale_value);
    if (out.defined()) return out;
  }
  if (is_half(q.dtype())) {
    const Tensor m = mask.defined() && mask.dtype() != DType::u8 ? mask.to(DType::f32) : mask;
    return scaled_dot_product_attention(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32), m,
                                        is_causal, scale)
        .to(q.dtype());
  }
  if (q.device().is_cuda())
    return unfused_attention_cuda(q, k, v, mask, is_causal, scale_value, Lq, Lk);

  const Placed pq = place(q, with_matrix(batch, Lq, E), true);
  const Placed pk = place(k, with_matrix(batch, Lk, E), true);
  const Placed pv = place(v, with_matrix(batch, Lk, Ev), true);
  const Placed pm = mask.defined() ? place(mask, with_matrix(batch, Lq, Lk), false) : Placed{};
  const int64_t B = shape_numel(batch);

  Tensor out = Tensor::empty(with_matrix(batch, Lq, Ev), q.dtype(), q.device());
  Shape lse_shape = batch;
  lse_shape.push_back(Lq);
  Tensor lse = Tensor::empty(lse_shape, q.dtype(), q.device());

  // The kernel's view of the operands; pointers are refreshed from the tensors at each use.
  auto args_for = [=]<class T>() {
    cpu::AttentionArgs<T> a = operand_args<T>(pq, pk, pv, B, Lq, Lk, is_causal);
    a.scale = T(scale_value);
    if (pm.t.defined()) {
      if (pm.t.dtype() == DType::u8) a.mask.keep = static_cast<const uint8_t*>(pm.t.raw_data());
      else a.mask.additive = static_cast<const T*>(pm.t.raw_data());
      a.mask.offset = pm.offsets.data();
      a.mask.row_stride = pm.row_stride, a.mask.col_stride = pm.col_stride;
    }
    return a;
  };
  SH_DISPATCH_FLOAT(q.dtype(), kOp, [&] {
    auto a = args_for.template operator()<scalar_t>();
    cpu::attention_forward<scalar_t>(a, out.data<scalar_t>(), lse.data<scalar_t>());
  });

  if (needs_record({&q, &k, &v})) {
    const bool need_q = q.requires_grad(), need_k = k.requires_grad(), need_v = v.requires_grad();
    const Shape q_shape = q.shape(), k_shape = k.shape(), v_shape = v.shape();
    const Tensor saved_out = out.detach();
    record(out, kOp, {&q, &k, &v}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor g = g_in.contiguous();
      const DType dt = g.dtype();
      Tensor gq = need_q ? Tensor::empty(with_matrix(batch, Lq, E), dt) : Tensor();
      Tensor gk = need_k ? Tensor::empty(with_matrix(batch, Lk, E), dt) : Tensor();
      Tensor gv = need_v ? Tensor::empty(with_matrix(batch, Lk, Ev), dt) : Tensor();
      SH_DISPATCH_FLOAT(dt, kOp, [&] {
        auto a = args_for.template operator()<scalar_t>();
        auto ptr = [](const Tensor& t) { return t.defined() ? t.data<scalar_t>() : nullptr; };
        cpu::attention_backward<scalar_t>(a, saved_out.data<scalar_t>(), lse.data<scalar_t>(),
                                          g.data<scalar_t>(), ptr(gq), ptr(gk), ptr(gv));
      });
      // Operands broadcast over batch entries get the sum of their entries' gradients.
      return {need_q ? sum_to_shape(gq, q_shape) : Tensor(),
              need_k ? sum_to_shape(gk, k_shape) : Tensor(),
              need_v ? sum_to_shape(gv, v_shape) : Tensor()};
    });
  }
  return out;
}

}  // namespace shallow
