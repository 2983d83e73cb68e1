// Softmax and log-softmax along one dim: one kernel call forward, one backward.
#include "engine/ops/softmax.h"

#include "engine/cuda/ops.h"
#include "engine/ops/common.h"
#include "kernels/cpu/softmax.h"

namespace shallow {
namespace {

// The [outer, n, inner] view of a contiguous tensor around dim d.
struct RowLayout {
  int64_t outer = 1, n = 1, inner = 1;
};

RowLayout row_layout(const Shape& shape, int64_t d) {
  RowLayout l;
  for (int64_t i = 0; i < int64_t(shape.size()); ++i) {
    if (i < d)
      l.outer *= shape[size_t(i)];
    else if (i == d)
      l.n = shape[size_t(i)];
    else
      l.inner *= shape[size_t(i)];
  }
  return l;
}

Tensor softmax_op(const Tensor& x_in, int64_t dim, bool log, const char* name) {
  check_float(x_in, name);
  if (is_half(x_in.dtype()))
    return softmax_op(x_in.to(DType::f32), dim, log, name).to(x_in.dtype());
  // A 0-d tensor is a row of one, as in torch (dim 0 or -1).
  if (x_in.dim() == 0) {
    SH_CHECK(dim == 0 || dim == -1, name, ": dim ", dim, " is out of range for a 0-d tensor");
    return softmax_op(x_in.reshape({1}), 0, log, name).reshape({});
  }
  const int64_t d = x_in.wrap_dim(dim, name);
  const RowLayout l = row_layout(x_in.shape(), d);
  Tensor x = x_in.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    gpu::softmax(l.outer, l.n, l.inner, x, y, log, name);
  } else {
    SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
      cpu::softmax<scalar_t>(l.outer, l.n, l.inner, x.data<scalar_t>(), y.data<scalar_t>(), log);
    });
  }
  if (needs_record({&x_in})) {
    Tensor saved_y = y.detach();
    record(y, name, {&x_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(saved_y.shape(), saved_y.dtype(), saved_y.device());
      if (saved_y.device().is_cuda()) {
        gpu::softmax_backward(l.outer, l.n, l.inner, saved_y, g, gx, log, name);
        return {gx};
      }
      SH_DISPATCH_FLOAT(saved_y.dtype(), name, [&] {
        cpu::softmax_backward<scalar_t>(l.outer, l.n, l.inner, saved_y.data<scalar_t>(),
                                        g.data<scalar_t>(), gx.data<scalar_t>(), log);
      });
      return {gx};
    });
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_op(x, dim, false, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_op(x, dim, true, "log_softmax"); }

}  // namespace shallow
