#include "engine/nn/linear.h"

#include <cmath>

#include "engine/nn/init.h"
#include "engine/ops/linalg.h"

namespace shallow::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, DType dtype)
    : Module("Linear"), in_features_(in_features), out_features_(out_features) {
  SH_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, got in ",
           in_features, ", out ", out_features);
  Tensor w = Tensor::empty({out_features, in_features}, dtype);
  init::kaiming_uniform_(w, std::sqrt(5.0));
  weight = register_parameter("weight", w);
  if (with_bias) {
    const double bound = 1.0 / std::sqrt(double(in_features));
    Tensor b = Tensor::empty({out_features}, dtype);
    init::uniform_(b, -bound, bound);
    bias = register_parameter("bias", b);
  }
}

Tensor Linear::forward(const Tensor& x) {
  SH_CHECK(x.dim() >= 1 && x.size(-1) == in_features_, "Linear(", in_features_, ", ",
           out_features_, "): expected an input [..., ", in_features_, "], got shape ",
           shape_str(x.shape()));
  return linear(x, weight, bias);
}

}  // namespace shallow::nn
