// Indexing ops: joining and splitting along a dim, picking rows or elements by index, and
// choosing elements by a condition. The forwards only move elements, so they work on every
// dtype bit-exactly (the kernels copy by width); the backwards add, in f32 or f64. On CUDA the
// backwards add with atomics (repeated indices sum in a varying order).
#include "engine/ops/indexing.h"

#include <algorithm>

#include "engine/cuda/indexing_ops.h"
#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/index.h"

namespace shallow {
namespace {

// A shape seen as [outer, n, inner] around one dim.
struct Around {
  int64_t outer = 1, n = 1, inner = 1;
};

Around around(const Shape& s, int64_t dim) {
  Around a;
  for (int64_t d = 0; d < int64_t(s.size()); ++d) {
    if (d < dim) a.outer *= s[size_t(d)];
    else if (d == dim) a.n = s[size_t(d)];
    else a.inner *= s[size_t(d)];
  }
  return a;
}

// Calls f(T{}) with T the unsigned integer as wide as the dtype: the moving kernels copy bits.
template <class F>
void by_width(DType t, F&& f) {
  switch (dtype_size(t)) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    case 8: return f(uint64_t{});
  }
  throw Error(str_cat("internal: no kernel for elements of ", dtype_size(t), " bytes"));
}

// Calls f(I{}) with I the C++ type of an index tensor (checked to be i32 or i64 before).
template <class F>
void by_index_type(DType t, F&& f) {
  if (t == DType::i64) return f(int64_t{});
  return f(int32_t{});
}

template <class T>
const T* ptr(const Tensor& t) { return static_cast<const T*>(t.raw_data()); }
template <class T>
T* mut_ptr(const Tensor& t) { return static_cast<T*>(t.raw_data()); }

void check_index_dtype(const Tensor& index, const char* op) {
  SH_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32, op,
           ": indices must be i64 or i32, got ", dtype_name(index.dtype()), " of shape ",
           shape_str(index.shape()));
}

// Throws, before anything is written, when an index falls outside [0, size) of `dim`. The
// indices are read on the host (one copy when they are on a GPU).
void check_index_range(const Tensor& index_in, int64_t size, int64_t dim, const char* op) {
  const Tensor index = index_in.to(Device::cpu()).contiguous();
  by_index_type(index.dtype(), [&](auto tag) {
    using I = decltype(tag);
    const I* p = ptr<I>(index);
    const int64_t at = cpu::first_out_of_range(index.numel(), p, size);
    SH_CHECK(at < 0, op, ": index ", int64_t(p[at]), " is out of range for dim ", dim,
             " of size ", size);
  });
}

// The backward of select_rows: adds every row of g into the row of x it was taken from.
Tensor add_rows_back(const Tensor& g, const Shape& x_shape, int64_t dim, const Tensor& index,
                     const char* op) {
  const Around a = around(x_shape, dim);
  const DType cdt = compute_dtype(g.dtype());
  Tensor gc = g.to(cdt).contiguous();
  Tensor gx = Tensor::zeros(x_shape, cdt, g.device());
  if (gx.device().is_cuda()) {
    gpu::index_add(a.outer, a.n, a.inner, gx, index, gc, op);
    return gx.to(g.dtype());
  }
  SH_DISPATCH_FLOAT(cdt, op, [&] {
    by_index_type(index.dtype(), [&](auto tag) {
      using I = decltype(tag);
      cpu::index_add<scalar_t, I>(a.outer, a.n, a.inner, gx.data<scalar_t>(), index.numel(),
                                  ptr<I>(index), gc.data<scalar_t>());
    });
  });
  return gx.to(g.dtype());
}

// index_select and embedding: rows of x along dim, in the order of a 1-D (or 0-D) index (on
// x's device or on the CPU).
Tensor select_rows(const Tensor& x, int64_t dim, const Tensor& index_in, const char* op) {
  check_index_dtype(index_in, op);
  SH_CHECK(x.dim() >= 1, op, ": expected a tensor with at least one dim, got shape ",
           shape_str(x.shape()));
  SH_CHECK(index_in.dim() <= 1, op, ": the index must be 1-D, got shape ",
           shape_str(index_in.shape()));
  dim = x.wrap_dim(dim, op);
  const Tensor index = index_in.detach().to(x.device()).contiguous();
  const Around a = around(x.shape(), dim);
  check_index_range(index_in.detach(), a.n, dim, op);

  const Tensor src = x.detach().contiguous();
  Shape out_shape = x.shape();
  out_shape[size_t(dim)] = index.numel();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  if (x.device().is_cuda()) gpu::index_select(a.outer, a.n, a.inner, src, index, out, op);
  else by_width(x.dtype(), [&](auto wtag) {
    using T = decltype(wtag);
    by_index_type(index.dtype(), [&](auto itag) {
      using I = decltype(itag);
      cpu::index_select<T, I>(a.outer, a.n, a.inner, ptr<T>(src), index.numel(), ptr<I>(index),
                              mut_ptr<T>(out));
    });
  });
  if (needs_record({&x})) {
    const Shape x_shape = x.shape();
    record(out, op, {&x}, [=](const Tensor& g) -> std::vector<Tensor> {
      return {add_rows_back(g, x_shape, dim, index, op)};
    });
  }
  return out;
}

// Shape that cond, a and b broadcast to, with an error naming all three.
Shape broadcast3(const Shape& c, const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max({c.size(), a.size(), b.size()});
  Shape out(n, 1);
  for (const Shape* s : {&c, &a, &b}) {
    for (size_t i = 0; i < s->size(); ++i) {
      const int64_t have = (*s)[i];
      int64_t& o = out[n - s->size() + i];
      SH_CHECK(have == o || have == 1 || o == 1, op, ": shapes ", shape_str(c), " (condition), ",
               shape_str(a), " and ", shape_str(b), " cannot be broadcast together");
      if (o == 1) o = have;
    }
  }
  return out;
}

void check_condition(const Tensor& cond, const char* op) {
  SH_CHECK(cond.dtype() == DType::u8 || is_floating(cond.dtype()), op,
           ": the condition must be u8 or floating-point (nonzero = true), got ",
           dtype_name(cond.dtype()), " of shape ", shape_str(cond.shape()));
}

// where and masked_fill: cond ? a : b, broadcast; gradients go to the side that was chosen.
Tensor select_where(const Tensor& cond_in, const Tensor& a, const Tensor& b, const char* op) {
  check_condition(cond_in, op);
  check_same_dtype(a, b, op);
  check_same_device(a, b, op);
  check_same_device(cond_in, a, op);
  const Shape shape = broadcast3(cond_in.shape(), a.shape(), b.shape(), op);
  // A half condition is widened to f32: exact, and zero stays zero.
  const Tensor cond = is_half(cond_in.dtype()) ? cond_in.detach().to(DType::f32) : cond_in.detach();
  const Tensor ec = cond.expand(shape), ea = a.detach().expand(shape), eb = b.detach().expand(shape);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.device().is_cuda()) gpu::where(ec, ea, eb, out, op);
  else by_width(a.dtype(), [&](auto wtag) {
    using T = decltype(wtag);
    auto run = [&](auto ctag) {
      using C = decltype(ctag);
      cpu::where<T, C>(int(shape.size()), shape.data(), ptr<C>(ec), ec.strides().data(),
                       ptr<T>(ea), ea.strides().data(), ptr<T>(eb), eb.strides().data(),
                       mut_ptr<T>(out));
    };
    switch (cond.dtype()) {
      case DType::u8: return run(uint8_t{});
      case DType::f64: return run(double{});
      default: return run(float{});
    }
  });
  if (needs_record({&a, &b})) {
    record(out, op, {&a, &b}, [=](const Tensor& g) -> std::vector<Tensor> {
      const Tensor zero = Tensor::full({}, 0.0, g.dtype(), g.device());
      Tensor ga, gb;
      if (a.requires_grad()) ga = sum_to_shape(select_where(cond, g, zero, op), a.shape());
      if (b.requires_grad()) gb = sum_to_shape(select_where(cond, zero, g, op), b.shape());
      return {ga, gb};
    });
  }
  return out;
}

}  // namespace

// ---- joining and splitting

Tensor concat(const std::vector<Tensor>& tensors, int64_t dim) {
  SH_CHECK(!tensors.empty(), "concat: expected at least one tensor");
  const Tensor& first = tensors[0];
  SH_CHECK(first.dim() >= 1, "concat: cannot concatenate scalars (shape [])");
  dim = first.wrap_dim(dim, "concat");
  Shape out_shape = first.shape();
  out_shape[size_t(dim)] = 0;
  std::vector<int64_t> sizes;
  std::vector<const Tensor*> inputs;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_same_dtype(first, t, "concat");
    check_same_device(first, t, "concat");
    bool match = t.dim() == first.dim();
    for (int64_t d = 0; match && d < t.dim(); ++d)
      match = d == dim || t.shape()[size_t(d)] == first.shape()[size_t(d)];
    SH_CHECK(match, "concat: tensor ", i, " has shape ", shape_str(t.shape()), " but tensor 0 has ",
             shape_str(first.shape()), " (sizes must match except in dim ", dim, ")");
    sizes.push_back(t.size(dim));
    out_shape[size_t(dim)] += sizes.back();
    inputs.push_back(&t);
  }
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  int64_t at = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    out.narrow(dim, at, sizes[i]).copy_(tensors[i]);
    at += sizes[i];
  }
  record(out, "concat", inputs, [dim, sizes](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> grads;
    int64_t start = 0;
    for (int64_t n : sizes) {
      grads.push_back(g.narrow(dim, start, n));
      start += n;
    }
    return grads;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  SH_CHECK(!tensors.empty(), "stack: expected at least one tensor");
  dim = tensors[0].wrap_dim(dim, "stack", /*allow_end=*/true);
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    SH_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: tensor ", i, " has shape ",
             shape_str(tensors[i].shape()), " but tensor 0 has ", shape_str(tensors[0].shape()));
    parts.push_back(tensors[i].unsqueeze(dim));
  }
  return concat(parts, dim);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  SH_CHECK(x.dim() >= 1, "split: cannot split a scalar");
  dim = x.wrap_dim(dim, "split");
  SH_CHECK(split_size > 0, "split: split_size must be positive, got ", split_size);
  const int64_t n = x.size(dim);
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += split_size) sizes.push_back(std::min(split_size, n - at));
  if (sizes.empty()) sizes.push_back(0);  // an empty dim gives one empty piece, as torch
  return split(x, sizes, dim);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  SH_CHECK(x.dim() >= 1, "split: cannot split a scalar");
  dim = x.wrap_dim(dim, "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    SH_CHECK(s >= 0, "split: sizes must not be negative, got ", shape_str(sizes));
    total += s;
  }
  SH_CHECK(total == x.size(dim), "split: sizes ", shape_str(sizes), " add up to ", total,
           " but dim ", dim, " of shape ", shape_str(x.shape()), " has size ", x.size(dim));
  std::vector<Tensor> pieces;
  int64_t at = 0;
  for (int64_t s : sizes) {
    pieces.push_back(x.narrow(dim, at, s));
    at += s;
  }
  return pieces;
}

// ---- picking by index

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  return select_rows(x, dim, index, "index_select");
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  SH_CHECK(weight.dim() == 2, "embedding: weight must be 2-D [num, dim], got shape ",
           shape_str(weight.shape()));
  check_index_dtype(indices, "embedding");
  Tensor rows = select_rows(weight, 0, indices.reshape({-1}), "embedding");
  Shape shape = indices.shape();
  shape.push_back(weight.size(1));
  return rows.reshape(shape);
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index_in) {
  const char* op = "gather";
  check_index_dtype(index_in, op);
  SH_CHECK(x.dim() >= 1 && index_in.dim() == x.dim(), op, ": the index ",
           shape_str(index_in.shape()), " must have as many dims as the input ",
           shape_str(x.shape()), " (at least one)");
  dim = x.wrap_dim(dim, op);
  for (int64_t d = 0; d < x.dim(); ++d)
    SH_CHECK(d == dim || index_in.size(d) <= x.size(d), op, ": the index ",
             shape_str(index_in.shape()), " is larger than the input ", shape_str(x.shape()),
             " in dim ", d);
  const Tensor index = index_in.detach().to(x.device()).contiguous();
  check_index_range(index_in.detach(), x.size(dim), dim, op);

  // The part of x the index can reach: the index's extent in every dim but `dim`.
  Tensor src = x.detach();
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != dim) src = src.narrow(d, 0, index.size(d));
  src = src.contiguous();
  const Around ai = around(index.shape(), dim);
  const int64_t n_src = x.size(dim);
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) gpu::gather(ai.outer, n_src, ai.inner, src, ai.n, index, out, op);
  else by_width(x.dtype(), [&](auto wtag) {
    using T = decltype(wtag);
    by_index_type(index.dtype(), [&](auto itag) {
      using I = decltype(itag);
      cpu::gather<T, I>(ai.outer, n_src, ai.inner, ptr<T>(src), ai.n, ptr<I>(index),
                        mut_ptr<T>(out));
    });
  });
  if (needs_record({&x})) {
    const Shape x_shape = x.shape(), reach_shape = src.shape();
    record(out, op, {&x}, [=](const Tensor& g) -> std::vector<Tensor> {
      const DType cdt = compute_dtype(g.dtype());
      Tensor gc = g.to(cdt).contiguous();
      Tensor reach = Tensor::zeros(reach_shape, cdt, g.device());
      if (reach.device().is_cuda())
        gpu::scatter_add(ai.outer, n_src, ai.inner, reach, ai.n, index, gc, op);
      else SH_DISPATCH_FLOAT(cdt, op, [&] {
        by_index_type(index.dtype(), [&](auto itag) {
          using I = decltype(itag);
          cpu::scatter_add<scalar_t, I>(ai.outer, n_src, ai.inner, reach.data<scalar_t>(), ai.n,
                                        ptr<I>(index), gc.data<scalar_t>());
        });
      });
      Tensor gx = reach;
      if (reach_shape != x_shape) {  // the rest of x was never read: its gradient is zero
        gx = Tensor::zeros(x_shape, cdt, g.device());
        Tensor part = gx;
        for (int64_t d = 0; d < int64_t(x_shape.size()); ++d)
          if (d != dim) part = part.narrow(d, 0, reach_shape[size_t(d)]);
        part.copy_(reach);
      }
      return {gx.to(g.dtype())};
    });
  }
  return out;
}

// ---- choosing by a condition

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  return select_where(cond, a, b, "where");
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_condition(mask, "masked_fill");
  const Shape shape = broadcast_shapes(mask.shape(), x.shape(), "masked_fill");
  SH_CHECK(shape == x.shape(), "masked_fill: the mask ", shape_str(mask.shape()),
           " cannot be broadcast to the input's shape ", shape_str(x.shape()));
  return select_where(mask, Tensor::full({}, value, x.dtype(), x.device()), x, "masked_fill");
}

}  // namespace shallow
