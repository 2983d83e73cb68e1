// View ops: new shape/strides/offset over the same storage, each with its backward.
#include <algorithm>
#include <numeric>
#include <optional>

#include "engine/autograd.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"

namespace shallow {
namespace {

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// Resolves one -1 and checks that the element count is unchanged.
Shape infer_shape(const Shape& want, int64_t numel, const Shape& from, const char* op) {
  Shape s = want;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SH_CHECK(infer < 0, op, ": only one dimension can be -1, got ", shape_str(want));
      infer = int64_t(i);
    } else {
      SH_CHECK(s[i] >= 0, op, ": invalid size ", s[i], " in ", shape_str(want));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SH_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_str(want),
             " is invalid for a tensor of shape ", shape_str(from));
    s[size_t(infer)] = numel / known;
  }
  SH_CHECK(shape_numel(s) == numel, op, ": shape ", shape_str(want),
           " is invalid for a tensor of shape ", shape_str(from), " (", numel, " elements)");
  return s;
}

// Strides for viewing (shape, strides) as `target` without a copy, if possible: each group
// of old dims that merges into new dims must be contiguous within itself.
std::optional<Shape> view_strides(const Shape& shape, const Shape& strides, const Shape& target) {
  Shape out(target.size());
  if (shape.empty() || shape_numel(shape) == 0) return contiguous_strides(target);
  int64_t view_d = int64_t(target.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[size_t(d)];
    if (d == 0 || (shape[size_t(d - 1)] != 1 &&
                   strides[size_t(d - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || target[size_t(view_d)] == 1)) {
        out[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= target[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[size_t(d - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& want) const {
  Shape s = infer_shape(want, numel(), shape(), "view");
  auto st = view_strides(shape(), strides(), s);
  SH_CHECK(st.has_value(), "view: a tensor of shape ", shape_str(shape()),
           " with these strides cannot be viewed as ", shape_str(s), " (use reshape)");
  Tensor out = make_view(*this, s, *st, offset());
  Shape in_shape = shape();
  record(out, "view", {this}, [in_shape](const Tensor& g) -> std::vector<Tensor> {
    return {g.reshape(in_shape)};
  });
  return out;
}

Tensor Tensor::reshape(const Shape& want) const {
  Shape s = infer_shape(want, numel(), shape(), "reshape");
  if (view_strides(shape(), strides(), s)) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  SH_CHECK(int64_t(dims.size()) == dim(), "permute: ", dims.size(), " dims given for a tensor of shape ",
           shape_str(shape()));
  Shape s(dims.size()), st(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], "permute");
    SH_CHECK(inverse[size_t(d)] < 0, "permute: dim ", d, " appears twice");
    inverse[size_t(d)] = int64_t(i);
    s[i] = shape()[size_t(d)];
    st[i] = strides()[size_t(d)];
  }
  Tensor out = make_view(*this, s, st, offset());
  record(out, "permute", {this}, [inverse](const Tensor& g) -> std::vector<Tensor> {
    return {g.permute(inverse)};
  });
  return out;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  a = wrap_dim(a, "transpose");
  b = wrap_dim(b, "transpose");
  if (dim() == 0) return *this;  // a scalar is its own transpose, as in PyTorch
  std::vector<int64_t> dims(static_cast<size_t>(dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[size_t(a)], dims[size_t(b)]);
  return permute(dims);
}

Tensor Tensor::t() const {
  SH_CHECK(dim() == 2, "t(): expected a 2-D tensor, got shape ", shape_str(shape()));
  return transpose(0, 1);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  SH_CHECK(dim() > 0, "slice: cannot slice a scalar");
  d = wrap_dim(d, "slice");
  SH_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = shape()[size_t(d)];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[size_t(d)] = (end - start + step - 1) / step;
  st[size_t(d)] *= step;
  Tensor out = make_view(*this, s, st, offset() + start * strides()[size_t(d)]);
  Shape in_shape = shape();
  DType dt = dtype();
  record(out, "slice", {this}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gi = Tensor::zeros(in_shape, dt, g.device());
    gi.slice(d, start, end, step).copy_(g);
    return {gi};
  });
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  SH_CHECK(dim() > 0, "narrow: cannot narrow a scalar");
  d = wrap_dim(d, "narrow");
  const int64_t n = shape()[size_t(d)];
  if (start < 0) start += n;
  SH_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: [", start, ", ",
           start + length, ") is out of range for dim ", d, " of size ", n);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  SH_CHECK(dim() > 0, "select: cannot select from a scalar");
  d = wrap_dim(d, "select");
  const int64_t n = shape()[size_t(d)];
  SH_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dim ", d,
           " of size ", n);
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& want) const {
  SH_CHECK(int64_t(want.size()) >= dim(), "expand: cannot expand shape ", shape_str(shape()),
           " to ", shape_str(want));
  const size_t lead = want.size() - shape().size();
  Shape s(want.size()), st(want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (i < lead) {
      SH_CHECK(want[i] >= 0, "expand: invalid size ", want[i], " in ", shape_str(want));
      s[i] = want[i];
      st[i] = 0;
      continue;
    }
    int64_t have = shape()[i - lead];
    int64_t w = want[i] == -1 ? have : want[i];
    SH_CHECK(have == w || have == 1, "expand: cannot expand shape ", shape_str(shape()), " to ",
             shape_str(want));
    s[i] = w;
    st[i] = have == w ? strides()[i - lead] : 0;
  }
  if (s == shape()) return *this;
  Tensor out = make_view(*this, s, st, offset());
  Shape in_shape = shape();
  record(out, "expand", {this}, [in_shape](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to_shape(g, in_shape)};
  });
  return out;
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, "squeeze");
  if (dim() == 0) return *this;
  if (shape()[size_t(d)] != 1) return *this;
  Shape s = shape();
  s.erase(s.begin() + d);
  return reshape(s);
}

Tensor Tensor::squeeze() const {
  Shape s;
  for (int64_t x : shape())
    if (x != 1) s.push_back(x);
  return reshape(s);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, "unsqueeze", /*allow_end=*/true);
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return reshape(s);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, "flatten");
  end = wrap_dim(end, "flatten");
  SH_CHECK(start <= end, "flatten: start dim ", start, " is after end dim ", end);
  Shape s(shape().begin(), shape().begin() + start);
  int64_t n = 1;
  for (int64_t i = start; i <= end; ++i) n *= shape()[size_t(i)];
  s.push_back(n);
  s.insert(s.end(), shape().begin() + end + 1, shape().end());
  return reshape(s);
}

}  // namespace shallow
