#include "engine/nn/init.h"

#include <cmath>

#include "engine/autograd.h"

namespace shallow::nn::init {

Tensor& uniform_(Tensor& t, double low, double high, Generator* gen) {
  NoGrad no_grad;
  t.copy_(uniform(t.shape(), low, high, DType::f64, gen));
  return t;
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  NoGrad no_grad;
  Tensor z = randn(t.shape(), DType::f64, gen);
  double* p = z.data<double>();
  for (int64_t i = 0; i < z.numel(); ++i) p[i] = mean + std * p[i];
  t.copy_(z);
  return t;
}

Tensor& zeros_(Tensor& t) { t.fill_(0.0); return t; }
Tensor& ones_(Tensor& t) { t.fill_(1.0); return t; }

namespace {
int64_t receptive_field(const Tensor& w) {
  SH_CHECK(w.dim() >= 2, "init: fan in/out needs a weight of at least 2 dims, got shape ",
           shape_str(w.shape()));
  int64_t r = 1;
  for (int64_t d = 2; d < w.dim(); ++d) r *= w.size(d);
  return r;
}
}  // namespace

int64_t fan_in(const Tensor& w) { return w.size(1) * receptive_field(w); }
int64_t fan_out(const Tensor& w) { return w.size(0) * receptive_field(w); }

Tensor& kaiming_uniform_(Tensor& t, double a, Generator* gen) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / double(fan_in(t)));
  return uniform_(t, -bound, bound, gen);
}

Tensor& xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  const double bound = gain * std::sqrt(6.0 / double(fan_in(t) + fan_out(t)));
  return uniform_(t, -bound, bound, gen);
}

}  // namespace shallow::nn::init
