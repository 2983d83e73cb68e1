#include "engine/nn/conv.h"

#include <cmath>

#include "engine/nn/init.h"

namespace shallow::nn {
namespace {

void check_channels(const char* what, int64_t in, int64_t out, int64_t groups) {
  SH_CHECK(in > 0 && out > 0 && groups > 0, what, ": channels and groups must be positive, got in ",
           in, ", out ", out, ", groups ", groups);
  SH_CHECK(in % groups == 0 && out % groups == 0, what, ": groups (", groups,
           ") must divide in_channels (", in, ") and out_channels (", out, ")");
}

// PyTorch's Conv default: kaiming-uniform(a = sqrt(5)) weight, U(+-1/sqrt(fan_in)) bias.
void init_conv(Tensor& weight, Tensor* bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias) {
    const double bound = 1.0 / std::sqrt(double(init::fan_in(weight)));
    init::uniform_(*bias, -bound, bound);
  }
}

}  // namespace

Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv1dOptions opt)
    : Module("Conv1d"), in_channels_(in_channels), opt_(opt) {
  check_channels("Conv1d", in_channels, out_channels, opt.groups);
  SH_CHECK(kernel_size > 0, "Conv1d: kernel_size must be positive, got ", kernel_size);
  Tensor w = Tensor::empty({out_channels, in_channels / opt.groups, kernel_size}, opt.dtype);
  Tensor b = opt.bias ? Tensor::empty({out_channels}, opt.dtype) : Tensor();
  init_conv(w, opt.bias ? &b : nullptr);
  weight = register_parameter("weight", w);
  if (opt.bias) bias = register_parameter("bias", b);
}

Tensor Conv1d::forward(const Tensor& x) {
  check_rank(x, {3});
  SH_CHECK(x.size(1) == in_channels_, "Conv1d: expected ", in_channels_,
           " input channels, got shape ", shape_str(x.shape()));
  return conv1d(x, weight, bias, opt_.stride, opt_.padding, opt_.dilation, opt_.groups);
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Int2 kernel_size, Conv2dOptions opt)
    : Module("Conv2d"), in_channels_(in_channels), opt_(opt) {
  check_channels("Conv2d", in_channels, out_channels, opt.groups);
  SH_CHECK(kernel_size[0] > 0 && kernel_size[1] > 0, "Conv2d: kernel_size must be positive, got [",
           kernel_size[0], ", ", kernel_size[1], "]");
  Tensor w = Tensor::empty({out_channels, in_channels / opt.groups, kernel_size[0], kernel_size[1]},
                           opt.dtype);
  Tensor b = opt.bias ? Tensor::empty({out_channels}, opt.dtype) : Tensor();
  init_conv(w, opt.bias ? &b : nullptr);
  weight = register_parameter("weight", w);
  if (opt.bias) bias = register_parameter("bias", b);
}

Tensor Conv2d::forward(const Tensor& x) {
  check_rank(x, {4});
  SH_CHECK(x.size(1) == in_channels_, "Conv2d: expected ", in_channels_,
           " input channels, got shape ", shape_str(x.shape()));
  return conv2d(x, weight, bias, opt_.stride, opt_.padding, opt_.dilation, opt_.groups);
}

}  // namespace shallow::nn
