// Losses. cross_entropy runs a fused log-softmax + NLL kernel with its own backward; mse_loss
// is composed of elementwise ops and a reduction.
#include "engine/ops/loss.h"

#include "engine/cuda/loss_ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/loss.h"

namespace shallow {
namespace {

void check_reduction(const std::string& reduction, const char* op) {
  SH_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none", op,
           ": reduction must be 'mean', 'sum' or 'none', got '", reduction, "'");
}

// Class-index targets as contiguous i64 on the logits' device, checked against the number of
// classes. The check reads the targets on the host (one copy when they are on a GPU).
Tensor checked_targets(const Tensor& target, const Tensor& logits, int64_t classes) {
  SH_CHECK(target.dtype() == DType::i64 || target.dtype() == DType::i32,
           "cross_entropy: expected class-index targets of dtype i64 or i32, got ",
           dtype_name(target.dtype()), " of shape ", shape_str(target.shape()));
  const Shape expected = logits.dim() == 2 ? Shape{logits.shape()[0]} : Shape{};
  SH_CHECK(target.shape() == expected, "cross_entropy: target of shape ", shape_str(target.shape()),
           " does not match logits of shape ", shape_str(logits.shape()), " (expected target ",
           shape_str(expected), ")");
  Tensor t = target.detach().to(Device::cpu()).to(DType::i64).contiguous();
  const int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i)
    SH_CHECK(p[i] >= 0 && p[i] < classes, "cross_entropy: target ", p[i], " at index ", i,
             " is out of range for ", classes, " classes (logits of shape ",
             shape_str(logits.shape()), ")");
  return t.to(logits.device());
}

}  // namespace

Tensor cross_entropy(const Tensor& logits_in, const Tensor& target, double label_smoothing,
                     const std::string& reduction) {
  const char* name = "cross_entropy";
  check_float(logits_in, name);
  check_reduction(reduction, name);
  SH_CHECK(logits_in.dim() == 1 || logits_in.dim() == 2, name,
           ": expected logits of shape [N, C] or [C], got ", shape_str(logits_in.shape()));
  SH_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, name,
           ": label_smoothing must be in [0, 1], got ", label_smoothing);
  const int64_t classes = logits_in.shape().back();
  SH_CHECK(classes > 0, name, ": logits of shape ", shape_str(logits_in.shape()),
           " have no classes");
  if (is_half(logits_in.dtype()))
    return cross_entropy(logits_in.to(DType::f32), target, label_smoothing, reduction)
        .to(logits_in.dtype());

  Tensor t = checked_targets(target, logits_in, classes);
  const int64_t rows = logits_in.numel() / classes;
  const DType dt = logits_in.dtype();
  // On the CPU, logits stored by class (the transpose of a contiguous matrix: CLIP's loss over
  // logits.t()) are read in place, and their gradient is made in that same layout, so that
  // neither direction copies the matrix.
  const bool by_class = logits_in.device().is_cpu() && logits_in.dim() == 2 && rows > 1 &&
                        classes > 1 && logits_in.strides()[0] == 1 && logits_in.strides()[1] == rows;
  Tensor x = by_class ? logits_in.detach() : logits_in.detach().contiguous();
  const Device device = x.device();
  Tensor per_row = Tensor::empty({rows}, dt, device), lse = Tensor::empty({rows}, dt, device);
  if (device.is_cuda()) {
    gpu::cross_entropy(rows, classes, x, t, label_smoothing, per_row, lse, name);
  } else {
    SH_DISPATCH_FLOAT(dt, name, [&] {
      (by_class ? cpu::cross_entropy_columns<scalar_t> : cpu::cross_entropy<scalar_t>)(
          rows, classes, x.data<scalar_t>(), t.data<int64_t>(), label_smoothing,
          per_row.data<scalar_t>(), lse.data<scalar_t>());
    });
  }
  Tensor out;
  {
    NoGrad ng;
    if (reduction == "none")
      out = per_row.reshape(target.shape());
    else if (reduction == "sum")
      out = sum(per_row);
    else
      out = div(sum(per_row), double(rows));
  }
  if (needs_record({&logits_in})) {
    const Shape row_shape{rows};
    record(out, name, {&logits_in}, [=](const Tensor& g) -> std::vector<Tensor> {
      // d(out)/d(per_row) as one scale per row.
      Tensor scale = reduction == "none"  ? g.reshape(row_shape)
                     : reduction == "sum" ? g.reshape({1}).expand(row_shape)
                                          : div(g, double(rows)).reshape({1}).expand(row_shape);
      scale = scale.contiguous();
      Tensor gx = by_class ? Tensor::empty({classes, rows}, dt, device).t()
                           : Tensor::empty(x.shape(), dt, device);
      if (device.is_cuda()) {
        gpu::cross_entropy_backward(rows, classes, x, t, label_smoothing, lse, scale, gx, name);
        return {gx};
      }
      SH_DISPATCH_FLOAT(dt, name, [&] {
        (by_class ? cpu::cross_entropy_columns_backward<scalar_t>
                  : cpu::cross_entropy_backward<scalar_t>)(
            rows, classes, x.data<scalar_t>(), t.data<int64_t>(), label_smoothing,
            lse.data<scalar_t>(), scale.data<scalar_t>(), gx.data<scalar_t>());
      });
      return {gx};
    });
  }
  return out;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  const char* name = "mse_loss";
  check_float(input, name);
  check_same_dtype(input, target, name);
  check_same_device(input, target, name);
  check_reduction(reduction, name);
  SH_CHECK(input.shape() == target.shape(), name, ": input of shape ", shape_str(input.shape()),
           " and target of shape ", shape_str(target.shape()), " differ");
  Tensor d = sub(input, target);
  Tensor sq = mul(d, d);
  if (reduction == "none") return sq;
  if (reduction == "sum") return sum(sq);
  return mean(sq);
}

}  // namespace shallow
