// Binary elementwise ops with broadcasting, and their gradients.
#include "engine/cuda/ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/indexing.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/binary.h"

namespace shallow {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    SH_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
             " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// Runs the kernel on a and b (same dtype: f32/f64, or bf16/f16 on the CPU for inference)
// broadcast to a common shape.
Tensor binary_forward(cpu::BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor ea = a.detach().expand(shape), eb = b.detach().expand(shape);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.device().is_cuda()) {
    gpu::binary(op, ea, eb, out, name);
    return out;
  }
  SH_DISPATCH_FLOAT_AND_HALF(a.dtype(), name, [&] {
    cpu::binary<scalar_t>(op, int(shape.size()), shape.data(),
                          static_cast<const scalar_t*>(ea.raw_data()), ea.strides().data(),
                          static_cast<const scalar_t*>(eb.raw_data()), eb.strides().data(),
                          out.data<scalar_t>());
  });
  return out;
}

using GradFn = std::vector<Tensor> (*)(const Tensor& g, const Tensor& a, const Tensor& b,
                                       const Tensor& out);

// As in PyTorch, a 0-dim CPU tensor (a number made a tensor, as Tensor::scalar) combines with a
// tensor on any device: it is sent to the other operand's device. Other mixes are errors.
Tensor on_device_of(const Tensor& scalar, const Tensor& other) {
  const bool movable = scalar.dim() == 0 && scalar.device().is_cpu() && !other.device().is_cpu();
  return movable ? scalar.to(other.device()) : scalar;
}

Tensor binary_op(cpu::BinaryOp op, const Tensor& a_in, const Tensor& b_in, const char* name,
                 GradFn grad) {
  const Tensor a = on_device_of(a_in, b_in), b = on_device_of(b_in, a_in);
  check_float(a, name);
  check_same_dtype(a, b, name);
  check_same_device(a, b, name);
  if (cpu_half_inference(a, {&a, &b})) return binary_forward(op, a, b, name);
  if (is_half(a.dtype()) && !native_half_forward(a, {&a, &b})) {
    return binary_op(op, a.to(DType::f32), b.to(DType::f32), name, grad).to(a.dtype());
  }
  Tensor out = binary_forward(op, a, b, name);
  if (needs_record({&a, &b})) {
    Tensor saved_out = out.detach();
    record(out, name, {&a, &b}, [=](const Tensor& g) -> std::vector<Tensor> {
      std::vector<Tensor> gs = grad(g, a.detach(), b.detach(), saved_out);
      return {a.requires_grad() && gs[0].defined() ? sum_to_shape(gs[0], a.shape()) : Tensor(),
              b.requires_grad() && gs[1].defined() ? sum_to_shape(gs[1], b.shape()) : Tensor()};
    });
  }
  return out;
}

// A 0-d tensor of t's dtype on t's device (operands of a binary op share a device).
Tensor scalar_like(double v, const Tensor& t) { return Tensor::full({}, v, t.dtype(), t.device()); }

// g * mask / share, with share >= 1 wherever mask is 1 (so no division by zero matters).
Tensor where_positive_div(const Tensor& g, const Tensor& mask, const Tensor& share) {
  return div(mul(g, mask), maximum(share, scalar_like(1.0, share)));
}

Tensor compare(cpu::BinaryOp op, const Tensor& a_in, const Tensor& b_in, const char* name) {
  const Tensor a = on_device_of(a_in, b_in), b = on_device_of(b_in, a_in);
  check_float(a, name);
  check_same_dtype(a, b, name);
  check_same_device(a, b, name);
  if (is_half(a.dtype())) return compare(op, a.to(DType::f32), b.to(DType::f32), name).to(a.dtype());
  return binary_forward(op, a, b, name);
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary_op(cpu::BinaryOp::add, a, b, "add",
                   [](const Tensor& g, const Tensor&, const Tensor&, const Tensor&) {
                     return std::vector<Tensor>{g, g};
                   });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return binary_op(cpu::BinaryOp::sub, a, b, "sub",
                   [](const Tensor& g, const Tensor&, const Tensor&, const Tensor&) {
                     return std::vector<Tensor>{g, neg(g)};
                   });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return binary_op(cpu::BinaryOp::mul, a, b, "mul",
                   [](const Tensor& g, const Tensor& a, const Tensor& b, const Tensor&) {
                     return std::vector<Tensor>{mul(g, b), mul(g, a)};
                   });
}

Tensor div(const Tensor& a, const Tensor& b) {
  return binary_op(cpu::BinaryOp::div, a, b, "div",
                   [](const Tensor& g, const Tensor&, const Tensor& b, const Tensor& out) {
                     Tensor ga = div(g, b);
                     return std::vector<Tensor>{ga, neg(mul(ga, out))};
                   });
}

Tensor pow(const Tensor& a, const Tensor& b) {
  return binary_op(cpu::BinaryOp::pow, a, b, "pow",
                   [](const Tensor& g, const Tensor& a, const Tensor& b, const Tensor& out) {
                     // d/da a^b = b a^(b-1), taken as 0 where b == 0 (else 0 * inf at a = 0);
                     // d/db a^b = a^b log a, taken as 0 where a == 0 and b >= 0 (the limit from
                     // a > 0). Both conventions are PyTorch's.
                     const Tensor zero = scalar_like(0.0, g);
                     Tensor ga = where(eq(b, zero), zero,
                                       mul(g, mul(b, pow(a, sub(b, scalar_like(1.0, b))))));
                     Tensor gb = where(mul(eq(a, zero), ge(b, zero)), zero, mul(g, mul(out, log(a))));
                     return std::vector<Tensor>{ga, gb};
                   });
}

// For max/min the gradient goes to the chosen operand, split evenly on ties (as PyTorch).
static std::vector<Tensor> extreme_grad(const Tensor& g, const Tensor& a, const Tensor& b,
                                        const Tensor& out) {
  Tensor from_a = eq(out, a), from_b = eq(out, b);
  Tensor share = add(from_a, from_b);  // 2 on ties
  Tensor ga = where_positive_div(g, from_a, share);
  Tensor gb = where_positive_div(g, from_b, share);
  return {ga, gb};
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary_op(cpu::BinaryOp::maximum, a, b, "maximum", extreme_grad);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary_op(cpu::BinaryOp::minimum, a, b, "minimum", extreme_grad);
}

Tensor eq(const Tensor& a, const Tensor& b) { return compare(cpu::BinaryOp::eq, a, b, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(cpu::BinaryOp::ne, a, b, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(cpu::BinaryOp::lt, a, b, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(cpu::BinaryOp::le, a, b, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(cpu::BinaryOp::gt, a, b, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(cpu::BinaryOp::ge, a, b, "ge"); }

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor sub(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor div(double a, const Tensor& b) { return div(scalar_like(a, b), b); }
Tensor pow(const Tensor& a, double e) { return pow(a, scalar_like(e, a)); }

}  // namespace shallow
