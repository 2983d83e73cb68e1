// Tensor factories, metadata, conversions and printing. Views live in ops/view.cpp.
#include "engine/tensor.h"

#include <cmath>
#include <cstring>
#include <iomanip>
#include <limits>
#include <sstream>

#include "engine/autograd.h"
#include "engine/cuda/ops.h"
#include "kernels/cpu/copy.h"

namespace shallow {

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    SH_CHECK(d >= 0, "negative size in shape ", shape_str(s));
    SH_CHECK(d == 0 || n <= std::numeric_limits<int64_t>::max() / d, "shape ", shape_str(s),
             " has more elements than fit in 64 bits");
    n *= d;
  }
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* what) {
  SH_CHECK(a.shape() == b.shape(), what, ": shapes differ, ", shape_str(a.shape()), " vs ",
           shape_str(b.shape()));
}

// ---- factories

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  const int64_t n = shape_numel(shape);
  SH_CHECK(uint64_t(n) <= (uint64_t(1) << 62) / dtype_size(dtype), "shape ", shape_str(shape),
           " is too large to allocate");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(n) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}
Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, DType::f64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = double(i);
  return t.to(dtype);
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype,
                            const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = strides.empty() && !shape.empty() ? contiguous_strides(shape) : strides;
  SH_CHECK(impl->strides.size() == shape.size(), "from_storage: ", shape.size(), " sizes but ",
           impl->strides.size(), " strides");
  // The furthest element reached must lie inside the storage. The sums are checked for
  // overflow: sizes and strides may come straight from a file.
  SH_CHECK(offset >= 0, "from_storage: negative offset ", offset);
  int64_t last = offset;
  bool empty_tensor = false, overflow = false;
  for (size_t d = 0; d < shape.size(); ++d) {
    SH_CHECK(shape[d] >= 0 && impl->strides[d] >= 0, "from_storage: negative size or stride");
    if (shape[d] == 0) { empty_tensor = true; continue; }
    int64_t reach = 0;
    overflow |= __builtin_mul_overflow(shape[d] - 1, impl->strides[d], &reach);
    overflow |= __builtin_add_overflow(last, reach, &last);
  }
  shape_numel(shape);
  int64_t end_element = 0, end_byte = 0;
  overflow |= __builtin_add_overflow(last, int64_t(1), &end_element);
  overflow |= __builtin_mul_overflow(end_element, int64_t(dtype_size(dtype)), &end_byte);
  SH_CHECK(empty_tensor || (!overflow && end_byte <= int64_t(storage->nbytes())),
           "from_storage: a tensor of shape ", shape_str(shape), " at offset ", offset,
           " reaches past the end of its ", storage->nbytes(), "-byte storage");
  impl->offset = offset;
  impl->dtype = dtype;
  impl->storage = std::move(storage);
  return Tensor(std::move(impl));
}

// ---- metadata

int64_t Tensor::wrap_dim(int64_t d, const char* op, bool allow_end) const {
  // A scalar wraps as if it had one dim (0 and -1 are valid), as in PyTorch.
  const int64_t n = std::max<int64_t>(dim() + (allow_end ? 1 : 0), 1);
  const int64_t w = d < 0 ? d + n : d;
  SH_CHECK(w >= 0 && w < n, op, ": dim ", d, " is out of range for a tensor of shape ",
           shape_str(shape()));
  return w;
}

int64_t Tensor::size(int64_t d) const {
  SH_CHECK(dim() > 0, "size(", d, "): a scalar (shape []) has no dims");
  return shape()[size_t(wrap_dim(d, "size"))];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape().size(); i-- > 0;) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) + offset() * int64_t(dtype_size(dtype()));
}

double Tensor::item() const {
  SH_CHECK(numel() == 1, "item(): the tensor has ", numel(), " elements, shape ", shape_str(shape()));
  return to_vector<double>()[0];
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).to(dtype_of<T>::value).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<bf16> Tensor::to_vector<bf16>() const;
template std::vector<f16> Tensor::to_vector<f16>() const;

// ---- copies and conversions

Tensor& Tensor::copy_(const Tensor& src_in) {
  Tensor src = src_in.detach();
  if (src.shape() != shape()) {
    NoGrad ng;
    src = src.expand(shape());
  }
  if (!device().is_cpu() || !src.device().is_cpu()) {
    gpu::copy(src, *this);  // engine/cuda/copy.cpp
    return *this;
  }
  const int nd = int(dim());
  SH_DISPATCH_ALL(src.dtype(), [&] {
    using S = scalar_t;
    const S* sp = static_cast<const S*>(src.raw_data());
    SH_DISPATCH_ALL(dtype(), [&] {
      cpu::strided_copy<S, scalar_t>(nd, shape().data(), sp, src.strides().data(),
                                      static_cast<scalar_t*>(raw_data()), strides().data());
    });
  });
  return *this;
}

Tensor& Tensor::fill_(double value) {
  if (!device().is_cpu() && is_contiguous()) {
    gpu::fill(*this, value);
    return *this;
  }
  if (is_contiguous()) {
    SH_DISPATCH_ALL(dtype(), [&] {
      scalar_t v = static_cast<scalar_t>(value);
      scalar_t* p = static_cast<scalar_t*>(raw_data());
      const int64_t n = numel();
      for (int64_t i = 0; i < n; ++i) p[i] = v;
    });
    return *this;
  }
  Tensor one = Tensor::full({}, value, DType::f64);
  return copy_(one);
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(shape(), target, device());
  out.copy_(*this);
  const DType from = dtype();
  record(out, "to_dtype", {this}, [from](const Tensor& g) -> std::vector<Tensor> {
    return {g.to(from)};
  });
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor out = empty(shape(), dtype(), d);  // throws where the device does not exist
  gpu::copy(detach(), out);
  const Device from = device();
  record(out, "to_device", {this}, [from](const Tensor& g) -> std::vector<Tensor> {
    return {g.to(from)};
  });
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  record(out, "clone", {this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage();
  impl->shape = shape();
  impl->strides = strides();
  impl->offset = offset();
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

// ---- autograd

Tensor& Tensor::set_requires_grad(bool r) {
  SH_CHECK(!r || is_floating(dtype()), "requires_grad on a tensor of dtype ", dtype_name(dtype()),
           ": only floating-point tensors can have gradients");
  SH_CHECK(is_leaf(), "requires_grad can only be set on a leaf tensor (use detach())");
  impl().requires_grad = r;
  return *this;
}

void Tensor::set_grad(const Tensor& g) {
  if (g.defined()) check_same_shape(*this, g, "set_grad");
  impl().grad = g.defined() ? g.impl_shared() : nullptr;
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  run_backward(*this, grad, retain_graph);
}

// ---- printing

namespace {
void print_nested(std::ostream& os, const std::vector<double>& v, const Shape& s, size_t d,
                  size_t& pos) {
  if (d == s.size()) {
    os << v[pos++];
    return;
  }
  os << "[";
  for (int64_t i = 0; i < s[d]; ++i) {
    if (i) os << (d + 1 == s.size() ? std::string(", ") : ",\n" + std::string(d + 1, ' '));
    print_nested(os, v, s, d + 1, pos);
  }
  os << "]";
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(" << dtype_name(dtype()) << ", " << shape_str(shape()) << ", " << device().str();
  if (requires_grad()) os << ", requires_grad";
  os << ")";
  const int64_t n = numel();
  if (n == 0 || !device().is_cpu()) return os.str();
  std::vector<double> v = to_vector<double>();
  os << std::setprecision(6) << "\n";
  if (n <= 64) {
    size_t pos = 0;
    print_nested(os, v, shape(), 0, pos);
  } else {
    double lo = v[0], hi = v[0], sum = 0;
    for (double x : v) { lo = std::min(lo, x); hi = std::max(hi, x); sum += x; }
    os << "[" << v[0] << ", " << v[1] << ", " << v[2] << ", ..., " << v[n - 3] << ", " << v[n - 2]
       << ", " << v[n - 1] << "]  min " << lo << "  max " << hi << "  mean " << sum / double(n);
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace shallow
