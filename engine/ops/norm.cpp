// Layer norm, batch norm and L2 normalization: a forward kernel that saves its statistics and
// a dedicated backward kernel for each.
#include "engine/ops/norm.h"

#include <cmath>

#include "engine/cuda/conv_ops.h"
#include "engine/cuda/l2norm_ops.h"
#include "engine/cuda/ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "kernels/cpu/norm.h"

namespace shallow {
namespace {

// Pointer to an optional (possibly undefined) contiguous tensor's data.
template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <class T>
T* grad_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// An optional parameter as a detached contiguous tensor of dtype `dt` (undefined stays so).
Tensor prepared(const Tensor& t, DType dt) {
  return t.defined() ? t.detach().to(dt).contiguous() : Tensor();
}

Tensor to_dtype_if(const Tensor& t, DType dt) { return t.defined() ? t.to(dt) : t; }

void check_param(const Tensor& p, const Tensor& x, const Shape& shape, const char* op,
                 const char* what) {
  if (!p.defined()) return;
  SH_CHECK(p.device() == x.device(), op, ": ", what, " is on ", p.device().str(),
           " but the input is on ", x.device().str());
  SH_CHECK(p.shape() == shape, op, ": ", what, " has shape ", shape_str(p.shape()), ", expected ",
           shape_str(shape), " for input of shape ", shape_str(x.shape()));
  SH_CHECK(p.dtype() == x.dtype(), op, ": ", what, " is ", dtype_name(p.dtype()),
           " but the input is ", dtype_name(x.dtype()));
}

}  // namespace

// ---- layer norm

Tensor layer_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const char* name = "layer_norm";
  check_float(x_in, name);
  const size_t k = normalized_shape.size();
  SH_CHECK(k >= 1 && k <= x_in.shape().size() &&
               Shape(x_in.shape().end() - int64_t(k), x_in.shape().end()) == normalized_shape,
           name, ": normalized_shape ", shape_str(normalized_shape),
           " must match the last dims of the input of shape ", shape_str(x_in.shape()));
  check_param(weight, x_in, normalized_shape, name, "weight");
  check_param(bias, x_in, normalized_shape, name, "bias");
  SH_CHECK(eps >= 0, name, ": eps must be >= 0, got ", eps);
  const int64_t n = shape_numel(normalized_shape);
  SH_CHECK(n > 0, name, ": normalized_shape ", shape_str(normalized_shape), " is empty");
  const int64_t rows = x_in.numel() / n;
  if (cpu_half_inference(x_in, {&x_in, &weight, &bias})) {
    const Tensor x = x_in.detach().contiguous();
    const Tensor w = prepared(weight, DType::f32), b = prepared(bias, DType::f32);
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    auto run = [&](auto half) {
      using H = decltype(half);
      cpu::layer_norm_half<H>(rows, n, x.data<H>(), data_or_null<float>(w), data_or_null<float>(b),
                              eps, y.data<H>());
    };
    if (x.dtype() == DType::bf16) run(bf16());
    else run(f16());
    return y;
  }
  if (is_half(x_in.dtype()) && !native_half_forward(x_in, {&x_in, &weight, &bias})) {
    return layer_norm(x_in.to(DType::f32), normalized_shape, to_dtype_if(weight, DType::f32),
                      to_dtype_if(bias, DType::f32), eps)
        .to(x_in.dtype());
  }
  const DType dt = x_in.dtype();
  Tensor x = x_in.detach().contiguous();
  Tensor w = prepared(weight, dt), b = prepared(bias, dt);
  Tensor y = Tensor::empty(x.shape(), dt, x.device());
  const DType stats_dt = compute_dtype(dt);  // f32 for the CUDA bf16/f16 forward
  Tensor mean = Tensor::empty({rows}, stats_dt, x.device());
  Tensor rstd = Tensor::empty({rows}, stats_dt, x.device());
  if (x.device().is_cuda()) {
    gpu::layer_norm(rows, n, x, w, b, eps, y, mean, rstd, name);
  } else {
    SH_DISPATCH_FLOAT(dt, name, [&] {
      cpu::layer_norm<scalar_t>(rows, n, x.data<scalar_t>(), data_or_null<scalar_t>(w),
                                data_or_null<scalar_t>(b), eps, y.data<scalar_t>(),
                                mean.data<scalar_t>(), rstd.data<scalar_t>());
    });
  }
  if (needs_record({&x_in, &weight, &bias})) {
    const bool need_w = weight.defined() && weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    const bool need_x = x_in.requires_grad();
    record(y, name, {&x_in, &weight, &bias}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      Tensor g = g_in.contiguous();
      const Device dev = x.device();
      Tensor gx = need_x ? Tensor::empty(x.shape(), dt, dev) : Tensor();
      Tensor gw = need_w ? Tensor::empty(normalized_shape, dt, dev) : Tensor();
      Tensor gb = need_b ? Tensor::empty(normalized_shape, dt, dev) : Tensor();
      if (dev.is_cuda()) {
        gpu::layer_norm_backward(rows, n, x, mean, rstd, w, g, gx, gw, gb, name);
        return {gx, gw, gb};
      }
      SH_DISPATCH_FLOAT(dt, name, [&] {
        cpu::layer_norm_backward<scalar_t>(rows, n, x.data<scalar_t>(), mean.data<scalar_t>(),
                                           rstd.data<scalar_t>(), data_or_null<scalar_t>(w),
                                           g.data<scalar_t>(), grad_or_null<scalar_t>(gx),
                                           grad_or_null<scalar_t>(gw), grad_or_null<scalar_t>(gb));
      });
      return {gx, gw, gb};
    });
  }
  return y;
}

// ---- batch norm

Tensor batch_norm(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  const char* name = "batch_norm";
  check_float(x_in, name);
  SH_CHECK(x_in.dim() >= 2, name, ": expected an input of shape [N, C, ...], got ",
           shape_str(x_in.shape()));
  const int64_t N = x_in.shape()[0], C = x_in.shape()[1];
  const int64_t S = C > 0 && N > 0 ? x_in.numel() / (N * C) : 0;
  check_param(weight, x_in, {C}, name, "weight");
  check_param(bias, x_in, {C}, name, "bias");
  SH_CHECK(running_mean.defined() == running_var.defined(), name,
           ": give both running_mean and running_var, or neither");
  for (const Tensor* r : {&running_mean, &running_var}) {
    if (!r->defined()) continue;
    SH_CHECK(r->device() == x_in.device(), name, ": running statistics are on ",
             r->device().str(), " but the input is on ", x_in.device().str());
    SH_CHECK(r->shape() == Shape{C} && is_floating(r->dtype()), name,
             ": running statistics must be floating-point of shape [", C, "], got ",
             dtype_name(r->dtype()), " ", shape_str(r->shape()), " for input of shape ",
             shape_str(x_in.shape()));
  }
  SH_CHECK(training || running_mean.defined(), name,
           ": evaluation mode needs running_mean and running_var");
  SH_CHECK(eps >= 0, name, ": eps must be >= 0, got ", eps);
  const int64_t count = N * S;
  SH_CHECK(!training || count > 1, name, ": training needs more than one value per channel, got ",
           "input of shape ", shape_str(x_in.shape()));
  if (is_half(x_in.dtype())) {
    return batch_norm(x_in.to(DType::f32), running_mean, running_var,
                      to_dtype_if(weight, DType::f32), to_dtype_if(bias, DType::f32), training,
                      momentum, eps)
        .to(x_in.dtype());
  }

  const DType dt = x_in.dtype();
  Tensor x = x_in.detach().contiguous();
  Tensor w = prepared(weight, dt), b = prepared(bias, dt);
  const Device dev = x.device();
  Tensor mean, var;
  if (training) {
    mean = Tensor::empty({C}, dt, dev);
    var = Tensor::empty({C}, dt, dev);
    if (dev.is_cuda()) {
      gpu::batch_norm_stats(N, C, S, x, mean, var, name);
    } else {
      SH_DISPATCH_FLOAT(dt, name, [&] {
        cpu::batch_norm_stats<scalar_t>(N, C, S, x.data<scalar_t>(), mean.data<scalar_t>(),
                                        var.data<scalar_t>());
      });
    }
  } else {
    // Copies: the running statistics may change in place before the backward runs.
    mean = running_mean.detach().to(dt).contiguous().clone();
    var = running_var.detach().to(dt).contiguous().clone();
  }
  Tensor invstd;
  Tensor y = Tensor::empty(x.shape(), dt, dev);
  {
    NoGrad ng;
    invstd = rsqrt(add(var, eps)).contiguous();
    if (dev.is_cuda()) {
      gpu::batch_norm_apply(N, C, S, x, mean, invstd, w, b, y, name);
    } else {
      SH_DISPATCH_FLOAT(dt, name, [&] {
        cpu::batch_norm_apply<scalar_t>(N, C, S, x.data<scalar_t>(), mean.data<scalar_t>(),
                                        invstd.data<scalar_t>(), data_or_null<scalar_t>(w),
                                        data_or_null<scalar_t>(b), y.data<scalar_t>());
      });
    }
    if (training && running_mean.defined()) {
      // As torch: running = (1 - momentum) * running + momentum * batch, with the unbiased
      // variance of the batch.
      Tensor rm = running_mean, rv = running_var;  // handles to the same storage
      Tensor unbiased = mul(var, double(count) / double(count - 1));
      Tensor new_mean = add(mul(rm.detach().to(dt), 1.0 - momentum), mul(mean, momentum));
      Tensor new_var = add(mul(rv.detach().to(dt), 1.0 - momentum), mul(unbiased, momentum));
      rm.copy_(new_mean);
      rv.copy_(new_var);
    }
  }

  if (needs_record({&x_in, &weight, &bias})) {
    const bool need_w = weight.defined() && weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    const bool need_x = x_in.requires_grad();
    record(y, name, {&x_in, &weight, &bias}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      Tensor g = g_in.contiguous();
      Tensor gx = need_x ? Tensor::empty(x.shape(), dt, dev) : Tensor();
      Tensor gw = need_w ? Tensor::empty({C}, dt, dev) : Tensor();
      Tensor gb = need_b ? Tensor::empty({C}, dt, dev) : Tensor();
      if (dev.is_cuda()) {
        gpu::batch_norm_backward(N, C, S, x, mean, invstd, w, g, training, gx, gw, gb, name);
        return {gx, gw, gb};
      }
      SH_DISPATCH_FLOAT(dt, name, [&] {
        cpu::batch_norm_backward<scalar_t>(N, C, S, x.data<scalar_t>(), mean.data<scalar_t>(),
                                           invstd.data<scalar_t>(), data_or_null<scalar_t>(w),
                                           g.data<scalar_t>(), training, grad_or_null<scalar_t>(gx),
                                           grad_or_null<scalar_t>(gw), grad_or_null<scalar_t>(gb));
      });
      return {gx, gw, gb};
    });
  }
  return y;
}

std::pair<Tensor, Tensor> batch_norm_eval_affine(const Tensor& running_mean,
                                                 const Tensor& running_var, const Tensor& weight,
                                                 const Tensor& bias, double eps) {
  const char* name = "batch_norm_eval_affine";
  SH_CHECK(running_mean.defined() && running_var.defined(), name,
           ": needs running_mean and running_var");
  SH_CHECK(running_mean.dim() == 1 && running_var.shape() == running_mean.shape(), name,
           ": running statistics must be [C] alike, got ", shape_str(running_mean.shape()),
           " and ", shape_str(running_var.shape()));
  for (const Tensor* t : {&weight, &bias})
    SH_CHECK(!t->defined() || t->shape() == running_mean.shape(), name, ": weight and bias must be ",
             shape_str(running_mean.shape()), ", got ", shape_str(t->shape()));
  SH_CHECK(eps >= 0, name, ": eps must be >= 0, got ", eps);
  NoGrad no_grad;
  const Tensor mean = running_mean.detach(), var = running_var.detach();
  Tensor scale = rsqrt(add(var, eps));
  if (weight.defined()) scale = mul(scale, weight.detach().to(scale.dtype()));
  const Tensor moved = mul(mean.to(scale.dtype()), scale);
  Tensor shift = bias.defined() ? sub(bias.detach().to(scale.dtype()), moved) : neg(moved);
  return {scale.contiguous(), shift.contiguous()};
}

// ---- L2 normalization

Tensor l2_normalize(const Tensor& x_in, int64_t dim, double eps) {
  const char* name = "l2_normalize";
  check_float(x_in, name);
  SH_CHECK(eps > 0, name, ": eps must be positive, got ", eps);
  if (is_half(x_in.dtype())) return l2_normalize(x_in.to(DType::f32), dim, eps).to(x_in.dtype());
  if (x_in.dim() == 0) {
    SH_CHECK(dim == 0 || dim == -1, name, ": dim ", dim, " is out of range for a 0-d tensor");
    return l2_normalize(x_in.reshape({1}), 0, eps).reshape({});
  }
  const int64_t d = x_in.wrap_dim(dim, name);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x_in.shape()[size_t(i)];
  for (int64_t i = d + 1; i < x_in.dim(); ++i) inner *= x_in.shape()[size_t(i)];
  const int64_t n = x_in.shape()[size_t(d)];
  const DType dt = x_in.dtype();
  Tensor x = x_in.detach().contiguous();
  const Device device = x.device();
  Tensor y = Tensor::empty(x.shape(), dt, device);
  Tensor norm = Tensor::zeros({outer * inner}, dt, device);
  if (x.numel() > 0 && device.is_cuda()) {
    gpu::l2_normalize(outer, n, inner, x, eps, y, norm, name);
  } else if (x.numel() > 0) {
    SH_DISPATCH_FLOAT(dt, name, [&] {
      cpu::l2_normalize<scalar_t>(outer, n, inner, x.data<scalar_t>(), eps, y.data<scalar_t>(),
                                  norm.data<scalar_t>());
    });
  }
  if (needs_record({&x_in})) {
    Tensor saved_y = y.detach();
    record(y, name, {&x_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::zeros(saved_y.shape(), dt, device);
      if (gx.numel() == 0) return {gx};
      if (device.is_cuda()) {
        gpu::l2_normalize_backward(outer, n, inner, saved_y, norm, eps, g, gx, name);
        return {gx};
      }
      SH_DISPATCH_FLOAT(dt, name, [&] {
        cpu::l2_normalize_backward<scalar_t>(outer, n, inner, saved_y.data<scalar_t>(),
                                             norm.data<scalar_t>(), eps, g.data<scalar_t>(),
                                             gx.data<scalar_t>());
      });
      return {gx};
    });
  }
  return y;
}

}  // namespace shallow
