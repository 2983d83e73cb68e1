// Reductions: every case is brought to a contiguous [outer, n, inner] block for the kernel.
#include "engine/ops/reduce.h"

#include <algorithm>
#include <numeric>

#include "engine/cuda/ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "kernels/cpu/reduce.h"

namespace shallow {
namespace {

struct Plan {
  Tensor block;       // contiguous input laid out as [outer, n, inner]
  int64_t outer = 1, n = 1, inner = 1;
  Shape out_shape;    // result shape with keepdim
  Shape kept_shape;   // result shape with reduced dims kept as 1
};

std::vector<int64_t> normalize_dims(const Tensor& x, const std::vector<int64_t>& dims,
                                    const char* op) {
  std::vector<int64_t> d;
  if (dims.empty()) {
    d.resize(size_t(x.dim()));
    std::iota(d.begin(), d.end(), 0);
    return d;
  }
  for (int64_t v : dims) d.push_back(x.wrap_dim(v, op));
  if (x.dim() == 0) return {};  // a scalar accepts dim 0 or -1, as in PyTorch: nothing to reduce
  std::sort(d.begin(), d.end());
  SH_CHECK(std::adjacent_find(d.begin(), d.end()) == d.end(), op, ": a dim is repeated");
  return d;
}

// How many values each result of a reduction over `dims` combines (no copy, unlike a Plan).
int64_t reduced_count(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  int64_t n = 1;
  for (int64_t d : normalize_dims(x, dims, op)) n *= x.shape()[size_t(d)];
  return n;
}

Plan plan_reduction(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim,
                    const char* op) {
  Plan p;
  std::vector<int64_t> dims = normalize_dims(x, dims_in, op);
  std::vector<bool> reduced(size_t(x.dim()), false);
  for (int64_t d : dims) reduced[size_t(d)] = true;
  for (int64_t d = 0; d < x.dim(); ++d) {
    p.kept_shape.push_back(reduced[size_t(d)] ? 1 : x.shape()[size_t(d)]);
    if (!reduced[size_t(d)] || keepdim) p.out_shape.push_back(p.kept_shape.back());
  }
  const bool adjacent = dims.empty() || dims.back() - dims.front() + 1 == int64_t(dims.size());
  if (adjacent && x.is_contiguous()) {
    p.block = x;
    for (int64_t d = 0; d < x.dim(); ++d) {
      const int64_t s = x.shape()[size_t(d)];
      if (reduced[size_t(d)]) p.n *= s;
      else if (dims.empty() || d < dims.front()) p.outer *= s;
      else p.inner *= s;
    }
    return p;
  }
  // Otherwise move the reduced dims last and copy: [kept..., reduced...].
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!reduced[size_t(d)]) { perm.push_back(d); p.outer *= x.shape()[size_t(d)]; }
  for (int64_t d : dims) { perm.push_back(d); p.n *= x.shape()[size_t(d)]; }
  p.block = x.permute(perm).contiguous();
  return p;
}

// Runs the kernel on a float tensor (no autograd); returns the keepdim-shaped result.
Tensor reduce_raw(cpu::ReduceOp op, const Plan& p, const char* name) {
  Tensor out = Tensor::empty(p.kept_shape, p.block.dtype(), p.block.device());
  SH_CHECK(op == cpu::ReduceOp::sum || p.n > 0, name, ": cannot reduce over an empty dim");
  if (out.device().is_cuda()) {
    gpu::reduce(op, p.outer, p.n, p.inner, p.block, out, Tensor(), name);
    return out;
  }
  SH_DISPATCH_FLOAT(p.block.dtype(), name, [&] {
    cpu::reduce<scalar_t>(op, p.outer, p.n, p.inner,
                          static_cast<const scalar_t*>(p.block.raw_data()), out.data<scalar_t>());
  });
  return out;
}

// Common path of sum/max/min: forward on f32/f64, backward given by `grad`.
template <class GradFn>
Tensor reduction(cpu::ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                 const char* name, GradFn grad) {
  check_float(x, name);
  if (is_half(x.dtype()))
    return reduction(op, x.to(DType::f32), dims, keepdim, name, grad).to(x.dtype());
  Plan p = plan_reduction(x.detach(), dims, keepdim, name);
  Tensor kept = reduce_raw(op, p, name);
  Tensor out = kept.view(p.out_shape);
  Shape kept_shape = p.kept_shape;
  record(out, name, {&x}, [=](const Tensor& g) -> std::vector<Tensor> {
    return {grad(g.reshape(kept_shape), x.detach(), kept.detach())};
  });
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduction(cpu::ReduceOp::sum, x, dims, keepdim, "sum",
                   [](const Tensor& g, const Tensor& x, const Tensor&) { return g.expand(x.shape()); });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float(x, "mean");
  const int64_t n = reduced_count(x, dims, "mean");
  SH_CHECK(n > 0, "mean: cannot average over an empty dim of a tensor of shape ", shape_str(x.shape()));
  return div(sum(x, dims, keepdim), double(n));
}

static Tensor extreme_grad(const Tensor& g, const Tensor& x, const Tensor& kept) {
  Tensor hit = eq(x, kept.expand(x.shape()));
  Tensor count = sum_to_shape(hit, kept.shape());
  return mul(hit, div(g, count).expand(x.shape()));
}

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduction(cpu::ReduceOp::max, x, dims, keepdim, "max", extreme_grad);
}

Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduction(cpu::ReduceOp::min, x, dims, keepdim, "min", extreme_grad);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  check_float(x, "var");
  const int64_t n = reduced_count(x, dims, "var");
  SH_CHECK(n - correction > 0, "var: ", n, " values with correction ", correction,
           " leave no degrees of freedom");
  // Two-pass form (mean first) for accuracy; autograd flows through the composed ops.
  Tensor m = mean(x, dims, /*keepdim=*/true);
  Tensor d = sub(x, m);
  Tensor v = div(sum(mul(d, d), dims, keepdim), double(n - correction));
  return v;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_float(x, "argmax");
  Tensor xf = x.detach().to(compute_dtype(x.dtype()));
  Plan p = plan_reduction(xf, {dim}, keepdim, "argmax");
  SH_CHECK(p.n > 0, "argmax: cannot reduce over an empty dim");
  Tensor values = Tensor::empty(p.kept_shape, xf.dtype(), xf.device());
  Tensor index = Tensor::empty(p.kept_shape, DType::i64, xf.device());
  if (xf.device().is_cuda()) {
    gpu::reduce(cpu::ReduceOp::max, p.outer, p.n, p.inner, p.block, values, index, "argmax");
    return index.view(p.out_shape);
  }
  SH_DISPATCH_FLOAT(xf.dtype(), "argmax", [&] {
    cpu::reduce<scalar_t>(cpu::ReduceOp::max, p.outer, p.n, p.inner,
                          static_cast<const scalar_t*>(p.block.raw_data()),
                          values.data<scalar_t>(), index.data<int64_t>());
  });
  return index.view(p.out_shape);
}

Tensor sum_to_shape(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  SH_CHECK(shape.size() <= x.shape().size(), "sum_to_shape: cannot reduce ", shape_str(x.shape()),
           " to ", shape_str(shape));
  const size_t lead = x.shape().size() - shape.size();
  std::vector<int64_t> dims;
  for (size_t i = 0; i < x.shape().size(); ++i) {
    if (i < lead) { dims.push_back(int64_t(i)); continue; }
    if (shape[i - lead] == 1 && x.shape()[i] != 1) dims.push_back(int64_t(i));
    else SH_CHECK(shape[i - lead] == x.shape()[i], "sum_to_shape: cannot reduce ",
                  shape_str(x.shape()), " to ", shape_str(shape));
  }
  if (dims.empty()) return x.reshape(shape);
  return sum(x, dims, /*keepdim=*/true).reshape(shape);
}

}  // namespace shallow
