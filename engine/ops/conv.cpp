// Convolutions: argument checks, then one kernel call forward and up to three backward.
#include "engine/ops/conv.h"

#include "engine/cuda/conv_ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "kernels/cpu/conv.h"

namespace shallow {
namespace {

void check_conv_args(const Tensor& x, const Tensor& weight, const Tensor& bias, Int2 stride,
                     Int2 padding, Int2 dilation, int64_t groups) {
  const char* op = "conv2d";
  check_float(x, op);
  check_same_dtype(x, weight, op);
  check_same_device(x, weight, op);
  SH_CHECK(x.dim() == 4, "conv2d: input must be 4-D [N, C, H, W], got ", shape_str(x.shape()));
  SH_CHECK(weight.dim() == 4, "conv2d: weight must be 4-D [C_out, C_in/groups, kH, kW], got ",
           shape_str(weight.shape()));
  SH_CHECK(stride[0] >= 1 && stride[1] >= 1 && dilation[0] >= 1 && dilation[1] >= 1 &&
               padding[0] >= 0 && padding[1] >= 0,
           "conv2d: stride and dilation must be >= 1 and padding >= 0, got stride (", stride[0],
           ", ", stride[1], "), padding (", padding[0], ", ", padding[1], "), dilation (",
           dilation[0], ", ", dilation[1], ")");
  SH_CHECK(groups >= 1, "conv2d: groups must be >= 1, got ", groups);
  const int64_t C_in = x.size(1), C_out = weight.size(0);
  SH_CHECK(C_in % groups == 0 && C_out % groups == 0, "conv2d: groups ", groups,
           " must divide the input channels and the output channels; input ",
           shape_str(x.shape()), ", weight ", shape_str(weight.shape()));
  SH_CHECK(weight.size(1) * groups == C_in, "conv2d: input ", shape_str(x.shape()), " has ", C_in,
           " channels but weight ", shape_str(weight.shape()), " with groups ", groups,
           " expects ", weight.size(1) * groups);
  for (int d = 0; d < 2; ++d) {
    const int64_t extent = dilation[size_t(d)] * (weight.size(2 + d) - 1) + 1;
    const int64_t padded = x.size(2 + d) + 2 * padding[size_t(d)];
    SH_CHECK(weight.size(2 + d) >= 1 && extent <= padded, "conv2d: kernel ",
             shape_str(weight.shape()), " (extent ", extent, " with dilation) is larger than the padded input ",
             shape_str(x.shape()), " (", padded, " with padding) along ", d == 0 ? "H" : "W");
  }
  if (bias.defined()) {
    check_same_dtype(x, bias, op);
    check_same_device(x, bias, op);
    SH_CHECK(bias.dim() == 1 && bias.size(0) == C_out, "conv2d: bias ", shape_str(bias.shape()),
             " does not match weight ", shape_str(weight.shape()), " (", C_out, " output channels)");
  }
}

// The kernels' description of a convolution of x [N, C_in, H, W] by weight
// [C_out, C_in/groups, kH, kW].
cpu::Conv2dShape conv_shape(const Tensor& x, const Tensor& weight, Int2 stride, Int2 padding,
                            Int2 dilation, int64_t groups) {
  cpu::Conv2dShape s;
  s.N = x.size(0), s.C_in = x.size(1), s.H = x.size(2), s.W = x.size(3);
  s.C_out = weight.size(0), s.kH = weight.size(2), s.kW = weight.size(3);
  s.stride_h = stride[0], s.stride_w = stride[1];
  s.pad_h = padding[0], s.pad_w = padding[1];
  s.dil_h = dilation[0], s.dil_w = dilation[1];
  s.groups = groups;
  return s;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Int2 stride,
              Int2 padding, Int2 dilation, int64_t groups) {
  check_conv_args(x, weight, bias, stride, padding, dilation, groups);
  // bf16 on CUDA goes to the kernels as it is (they sum in f32); other 16-bit cases are
  // computed in f32 and rounded back.
  const bool native_bf16 = x.dtype() == DType::bf16 && x.device().is_cuda();
  if (is_half(x.dtype()) && !native_bf16) {
    Tensor b32 = bias.defined() ? bias.to(DType::f32) : Tensor();
    return conv2d(x.to(DType::f32), weight.to(DType::f32), b32, stride, padding, dilation, groups)
        .to(x.dtype());
  }
  const cpu::Conv2dShape s = conv_shape(x, weight, stride, padding, dilation, groups);

  const Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  const Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty({s.N, s.C_out, s.H_out(), s.W_out()}, x.dtype(), x.device());
  if (x.device().is_cuda()) {
    gpu::conv2d_forward(s, xc, wc, bc, y, "conv2d");
  } else {
    SH_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
      cpu::conv2d_forward<scalar_t>(s, xc.data<scalar_t>(), wc.data<scalar_t>(),
                                    bc.defined() ? bc.data<scalar_t>() : nullptr,
                                    y.data<scalar_t>());
    });
  }

  if (needs_record({&x, &weight, &bias})) {
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    // The input gradient needs the weight, the weight gradient the input: keep only those.
    const Tensor saved_w = need_x ? wc : Tensor(), saved_x = need_w ? xc : Tensor();
    const Shape x_shape = xc.shape(), w_shape = wc.shape();
    record(y, "conv2d", {&x, &weight, &bias}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor g = g_in.contiguous();
      Tensor gx, gw, gb;
      if (g.device().is_cuda()) {
        const char* op = "conv2d backward";
        if (need_x) {
          gx = Tensor::empty(x_shape, g.dtype(), g.device());
          gpu::conv2d_backward_input(s, g, saved_w, gx, op);
        }
        if (need_w) {
          gw = Tensor::empty(w_shape, g.dtype(), g.device());
          gpu::conv2d_backward_weight(s, g, saved_x, gw, op);
        }
        if (need_b) {
          gb = Tensor::empty({s.C_out}, g.dtype(), g.device());
          gpu::conv2d_backward_bias(s, g, gb, op);
        }
        return {gx, gw, gb};
      }
      SH_DISPATCH_FLOAT(g.dtype(), "conv2d backward", [&] {
        const scalar_t* gp = g.data<scalar_t>();
        if (need_x) {
          gx = Tensor::empty(x_shape, g.dtype(), g.device());
          cpu::conv2d_backward_input<scalar_t>(s, gp, saved_w.data<scalar_t>(), gx.data<scalar_t>());
        }
        if (need_w) {
          gw = Tensor::empty(w_shape, g.dtype(), g.device());
          cpu::conv2d_backward_weight<scalar_t>(s, gp, saved_x.data<scalar_t>(), gw.data<scalar_t>());
        }
        if (need_b) {
          gb = Tensor::empty({s.C_out}, g.dtype(), g.device());
          cpu::conv2d_backward_bias<scalar_t>(s, gp, gb.data<scalar_t>());
        }
      });
      return {gx, gw, gb};
    });
  }
  return y;
}

Tensor conv2d_affine(const Tensor& x, const Tensor& weight, const Tensor& scale,
                     const Tensor& shift, const Tensor& residual, bool relu_after, Int2 stride,
                     Int2 padding, Int2 dilation, int64_t groups) {
  const char* op = "conv2d_affine";
  check_conv_args(x, weight, Tensor(), stride, padding, dilation, groups);
  const int64_t C_out = weight.size(0);
  for (const Tensor* t : {&scale, &shift}) {
    if (!t->defined()) continue;
    SH_CHECK(t->shape() == Shape{C_out}, op, ": scale and shift must be [", C_out,
             "], one per output channel, got ", shape_str(t->shape()));
    check_same_dtype(x, *t, op);
    check_same_device(x, *t, op);
  }
  const cpu::Conv2dShape s = conv_shape(x, weight, stride, padding, dilation, groups);
  const Shape y_shape{s.N, s.C_out, s.H_out(), s.W_out()};
  if (residual.defined()) {
    SH_CHECK(residual.shape() == y_shape, op, ": the residual must have the output's shape ",
             shape_str(y_shape), ", got ", shape_str(residual.shape()));
    check_same_dtype(x, residual, op);
    check_same_device(x, residual, op);
  }
  const bool fused = x.device().is_cpu() && (x.dtype() == DType::f32 || x.dtype() == DType::f64) &&
                     !needs_record({&x, &weight, &scale, &shift, &residual});
  if (!fused) {
    const Shape per_channel{1, C_out, 1, 1};
    Tensor y = conv2d(x, weight, Tensor(), stride, padding, dilation, groups);
    if (scale.defined()) y = mul(y, scale.view(per_channel));
    if (shift.defined()) y = add(y, shift.view(per_channel));
    if (residual.defined()) y = add(y, residual);
    return relu_after ? relu(y) : y;
  }
  const Tensor xc = x.contiguous(), wc = weight.contiguous();
  const Tensor sc = scale.defined() ? scale.contiguous() : Tensor();
  const Tensor hc = shift.defined() ? shift.contiguous() : Tensor();
  const Tensor rc = residual.defined() ? residual.contiguous() : Tensor();
  Tensor y = Tensor::empty(y_shape, x.dtype(), x.device());
  SH_DISPATCH_FLOAT(x.dtype(), op, [&] {
    cpu::ConvEpilogue<scalar_t> ep;
    ep.scale = sc.defined() ? sc.data<scalar_t>() : nullptr;
    ep.shift = hc.defined() ? hc.data<scalar_t>() : nullptr;
    ep.residual = rc.defined() ? rc.data<scalar_t>() : nullptr;
    ep.relu = relu_after;
    cpu::conv2d_forward<scalar_t>(s, xc.data<scalar_t>(), wc.data<scalar_t>(), ep,
                                  y.data<scalar_t>());
  });
  return y;
}

// conv1d is conv2d over a height of one; the views carry the gradients.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding, int64_t dilation, int64_t groups) {
  SH_CHECK(x.dim() == 3, "conv1d: input must be 3-D [N, C, L], got ", shape_str(x.shape()));
  SH_CHECK(weight.dim() == 3, "conv1d: weight must be 3-D [C_out, C_in/groups, k], got ",
           shape_str(weight.shape()));
  try {
    return conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, {1, stride}, {0, padding},
                  {1, dilation}, groups)
        .squeeze(2);
  } catch (const Error& e) {
    // Name the op the caller used, with the shapes it passed.
    throw Error(str_cat("conv1d (input ", shape_str(x.shape()), ", weight ",
                        shape_str(weight.shape()), "): ", e.what()));
  }
}

}  // namespace shallow
