// Dropout and channel dropout. The mask comes from Philox at a counter offset reserved from
// the generator, so the backward recomputes it instead of saving it.
#include "engine/ops/dropout.h"

#include "engine/cuda/random_ops.h"
#include "engine/ops/common.h"
#include "kernels/cpu/dropout.h"

namespace shallow {
namespace {

// x viewed as `units` blocks of S elements; each block is kept (scaled) or zeroed as a whole.
Tensor dropout_units(const Tensor& x_in, double p, bool training, Generator* gen, int64_t units,
                     int64_t S, const char* name) {
  check_float(x_in, name);
  SH_CHECK(p >= 0.0 && p <= 1.0, name, ": p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x_in;
  if (is_half(x_in.dtype()))
    return dropout_units(x_in.to(DType::f32), p, training, gen, units, S, name).to(x_in.dtype());

  Generator& g = gen ? *gen : default_generator(x_in.device());
  const uint64_t seed = g.seed();
  const uint64_t offset = g.advance(cpu::dropout_counters(units));
  auto apply = [=](const Tensor& in) {
    Tensor src = in.detach().contiguous();
    Tensor out = Tensor::empty(src.shape(), src.dtype(), src.device());
    if (src.device().is_cuda()) {
      gpu::dropout(units, S, src, out, p, seed, offset, name);
      return out;
    }
    SH_DISPATCH_FLOAT(src.dtype(), name, [&] {
      cpu::dropout<scalar_t>(units, S, src.data<scalar_t>(), out.data<scalar_t>(), p, seed, offset);
    });
    return out;
  };
  Tensor y = apply(x_in);
  // y = x * mask * scale is linear in x: the gradient is the same masking of the incoming one.
  record(y, name, {&x_in},
         [=](const Tensor& g_out) -> std::vector<Tensor> { return {apply(g_out)}; });
  return y;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  return dropout_units(x, p, training, gen, x.numel(), 1, "dropout");
}

Tensor dropout2d(const Tensor& x, double p, bool training, Generator* gen) {
  SH_CHECK(x.dim() >= 2, "dropout2d: expected an input of shape [N, C, ...], got ",
           shape_str(x.shape()));
  const int64_t units = x.shape()[0] * x.shape()[1];
  const int64_t S = units > 0 ? x.numel() / units : 0;
  return dropout_units(x, p, training, gen, units, S, "dropout2d");
}

}  // namespace shallow
