// Pooling ops (declared in conv.h): argument checks, window geometry, kernel calls.
#include "engine/cuda/conv_ops.h"
#include "engine/ops/common.h"
#include "engine/ops/conv.h"
#include "kernels/cpu/pool.h"

namespace shallow {
namespace {

void check_pool_input(const Tensor& x, const char* op) {
  check_float(x, op);
  SH_CHECK(x.dim() == 3 || x.dim() == 4, op, ": input must be 3-D [C, H, W] or 4-D [N, C, H, W], got ",
           shape_str(x.shape()));
  SH_CHECK(x.numel() > 0, op, ": input ", shape_str(x.shape()), " is empty");
}

// A contiguous 4-D working copy; a 3-D [C, H, W] input counts as one image.
Tensor as_images(const Tensor& x) {
  Tensor x4 = x.detach();
  if (x4.dim() == 3) x4 = x4.unsqueeze(0);
  return x4.contiguous();
}

// Output shape with x's rank (3-D in, 3-D out).
Shape pooled_shape(const Tensor& x, int64_t H_out, int64_t W_out) {
  Shape out = x.shape();
  out[out.size() - 2] = H_out;
  out[out.size() - 1] = W_out;
  return out;
}

// Fills the window geometry of avg/max pooling, with PyTorch's checks.
cpu::Pool2dShape window_shape(const Tensor& x4, const Tensor& x, Int2 kernel, Int2& stride,
                              Int2 padding, Int2 dilation, bool ceil_mode, const char* op) {
  if (stride[0] == 0 && stride[1] == 0) stride = kernel;
  SH_CHECK(kernel[0] >= 1 && kernel[1] >= 1 && stride[0] >= 1 && stride[1] >= 1 &&
               dilation[0] >= 1 && dilation[1] >= 1,
           op, ": kernel, stride and dilation must be positive, got kernel (", kernel[0], ", ",
           kernel[1], "), stride (", stride[0], ", ", stride[1], "), dilation (", dilation[0],
           ", ", dilation[1], ")");
  SH_CHECK(padding[0] >= 0 && padding[1] >= 0 && padding[0] <= kernel[0] / 2 &&
               padding[1] <= kernel[1] / 2,
           op, ": padding (", padding[0], ", ", padding[1],
           ") must be between 0 and half the kernel (", kernel[0], ", ", kernel[1], ")");
  cpu::Pool2dShape s;
  s.planes = x4.size(0) * x4.size(1), s.H = x4.size(2), s.W = x4.size(3);
  s.kH = kernel[0], s.kW = kernel[1], s.stride_h = stride[0], s.stride_w = stride[1];
  s.pad_h = padding[0], s.pad_w = padding[1], s.dil_h = dilation[0], s.dil_w = dilation[1];
  s.H_out = cpu::pool_output_size(s.H, s.kH, s.stride_h, s.pad_h, s.dil_h, ceil_mode);
  s.W_out = cpu::pool_output_size(s.W, s.kW, s.stride_w, s.pad_w, s.dil_w, ceil_mode);
  SH_CHECK(s.H_out >= 1 && s.W_out >= 1, op, ": kernel (", kernel[0], ", ", kernel[1],
           ") with dilation (", dilation[0], ", ", dilation[1], ") is larger than the input ",
           shape_str(x.shape()), " padded by (", padding[0], ", ", padding[1], ")");
  return s;
}

}  // namespace

Tensor avg_pool2d(const Tensor& x, Int2 kernel, Int2 stride, Int2 padding, bool ceil_mode,
                  bool count_include_pad) {
  const char* op = "avg_pool2d";
  check_pool_input(x, op);
  if (is_half(x.dtype()))
    return avg_pool2d(x.to(DType::f32), kernel, stride, padding, ceil_mode, count_include_pad)
        .to(x.dtype());
  const Tensor x4 = as_images(x);
  const cpu::Pool2dShape s = window_shape(x4, x, kernel, stride, padding, {1, 1}, ceil_mode, op);
  Tensor y = Tensor::empty(pooled_shape(x, s.H_out, s.W_out), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    gpu::avg_pool2d_forward(s, count_include_pad, x4, y, op);
  } else {
    SH_DISPATCH_FLOAT(x.dtype(), op, [&] {
      cpu::avg_pool2d_forward<scalar_t>(s, count_include_pad, x4.data<scalar_t>(),
                                        y.data<scalar_t>());
    });
  }
  const Shape x_shape = x.shape();
  record(y, op, {&x}, [=](const Tensor& g_in) -> std::vector<Tensor> {
    const Tensor g = g_in.contiguous();
    Tensor gx = Tensor::empty(x_shape, g.dtype(), g.device());
    if (g.device().is_cuda()) {
      gpu::avg_pool2d_backward(s, count_include_pad, g, gx, op);
      return {gx};
    }
    SH_DISPATCH_FLOAT(g.dtype(), op, [&] {
      cpu::avg_pool2d_backward<scalar_t>(s, count_include_pad, g.data<scalar_t>(), gx.data<scalar_t>());
    });
    return {gx};
  });
  return y;
}

Tensor max_pool2d(const Tensor& x, Int2 kernel, Int2 stride, Int2 padding, Int2 dilation,
                  bool ceil_mode) {
  const char* op = "max_pool2d";
  check_pool_input(x, op);
  if (is_half(x.dtype()))
    return max_pool2d(x.to(DType::f32), kernel, stride, padding, dilation, ceil_mode).to(x.dtype());
  const Tensor x4 = as_images(x);
  const cpu::Pool2dShape s = window_shape(x4, x, kernel, stride, padding, dilation, ceil_mode, op);
  const Shape out_shape = pooled_shape(x, s.H_out, s.W_out);
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor argmax = Tensor::empty(out_shape, DType::i64, x.device());
  if (x.device().is_cuda()) {
    gpu::max_pool2d_forward(s, x4, y, argmax, op);
  } else {
    SH_DISPATCH_FLOAT(x.dtype(), op, [&] {
      cpu::max_pool2d_forward<scalar_t>(s, x4.data<scalar_t>(), y.data<scalar_t>(),
                                        argmax.data<int64_t>());
    });
  }
  const Shape x_shape = x.shape();
  record(y, op, {&x}, [=](const Tensor& g_in) -> std::vector<Tensor> {
    const Tensor g = g_in.contiguous();
    Tensor gx = Tensor::empty(x_shape, g.dtype(), g.device());
    if (g.device().is_cuda()) {
      gpu::max_pool2d_backward(s, g, argmax, gx, op);
      return {gx};
    }
    SH_DISPATCH_FLOAT(g.dtype(), op, [&] {
      cpu::max_pool2d_backward<scalar_t>(s, g.data<scalar_t>(), argmax.data<int64_t>(),
                                         gx.data<scalar_t>());
    });
    return {gx};
  });
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, Int2 output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_pool_input(x, op);
  SH_CHECK(output_size[0] >= 1 && output_size[1] >= 1, op, ": output size must be positive, got (",
           output_size[0], ", ", output_size[1], ") for input ", shape_str(x.shape()));
  if (is_half(x.dtype())) return adaptive_avg_pool2d(x.to(DType::f32), output_size).to(x.dtype());
  const Tensor x4 = as_images(x);
  const int64_t planes = x4.size(0) * x4.size(1), H = x4.size(2), W = x4.size(3);
  const int64_t Ho = output_size[0], Wo = output_size[1];
  Tensor y = Tensor::empty(pooled_shape(x, Ho, Wo), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    gpu::adaptive_avg_pool2d_forward(planes, H, W, Ho, Wo, x4, y, op);
  } else {
    SH_DISPATCH_FLOAT(x.dtype(), op, [&] {
      cpu::adaptive_avg_pool2d_forward<scalar_t>(planes, H, W, Ho, Wo, x4.data<scalar_t>(),
                                                 y.data<scalar_t>());
    });
  }
  const Shape x_shape = x.shape();
  record(y, op, {&x}, [=](const Tensor& g_in) -> std::vector<Tensor> {
    const Tensor g = g_in.contiguous();
    Tensor gx = Tensor::empty(x_shape, g.dtype(), g.device());
    if (g.device().is_cuda()) {
      gpu::adaptive_avg_pool2d_backward(planes, H, W, Ho, Wo, g, gx, op);
      return {gx};
    }
    SH_DISPATCH_FLOAT(g.dtype(), op, [&] {
      cpu::adaptive_avg_pool2d_backward<scalar_t>(planes, H, W, Ho, Wo, g.data<scalar_t>(),
                                                  gx.data<scalar_t>());
    });
    return {gx};
  });
  return y;
}

}  // namespace shallow
