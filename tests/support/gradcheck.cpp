#include "tests/support/gradcheck.h"

#include <cmath>
#include <sstream>

namespace shallow::testing {

Tensor rand_input(const Shape& shape, uint64_t seed, double low, double high) {
  Generator g(seed);
  Tensor t = uniform(shape, low, high, DType::f64, &g);
  t.set_requires_grad(true);
  return t;
}

::testing::AssertionResult gradcheck(const Fn& fn, std::vector<Tensor> inputs,
                                     GradcheckOptions opt) {
  // Project the output on fixed random weights so that every output element matters.
  Tensor out0;
  {
    NoGrad ng;
    out0 = fn(inputs);
  }
  Generator wg(12345);
  Tensor w = uniform(out0.shape(), 0.5, 1.5, DType::f64, &wg);
  auto objective = [&](const std::vector<Tensor>& in) { return sum(mul(fn(in), w)); };

  for (auto& t : inputs)
    if (t.defined() && t.requires_grad()) t.zero_grad();
  objective(inputs).backward();

  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    if (x.dtype() != DType::f64)
      return ::testing::AssertionFailure() << "input " << i << " must be f64 for gradcheck";
    Tensor analytic = x.grad();
    std::vector<double> ga = analytic.defined() ? analytic.to_vector<double>()
                                                : std::vector<double>(size_t(x.numel()), 0.0);
    Tensor xc = x.contiguous();
    double* p = xc.data<double>();  // perturb in place (leaf storage)
    if (xc.impl_ptr() != x.impl_ptr())
      return ::testing::AssertionFailure() << "input " << i << " must be contiguous";
    for (int64_t k = 0; k < x.numel(); ++k) {
      const double orig = p[k];
      double fp, fm;
      {
        NoGrad ng;
        p[k] = orig + opt.eps;
        fp = objective(inputs).item();
        p[k] = orig - opt.eps;
        fm = objective(inputs).item();
        p[k] = orig;
      }
      const double numeric = (fp - fm) / (2 * opt.eps);
      const double a = ga[size_t(k)];
      if (!(std::fabs(a - numeric) <= opt.atol + opt.rtol * std::fabs(numeric))) {
        return ::testing::AssertionFailure()
               << "gradient of input " << i << " (shape " << shape_str(x.shape())
               << ") at element " << k << ": backward gives " << a << ", finite differences "
               << numeric;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace shallow::testing
