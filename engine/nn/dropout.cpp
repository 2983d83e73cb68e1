#include "engine/nn/dropout.h"

#include "engine/ops/dropout.h"

namespace shallow::nn {

Dropout::Dropout(double p) : Module("Dropout"), p_(p) {
  SH_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training()); }

Dropout2d::Dropout2d(double p) : Module("Dropout2d"), p_(p) {
  SH_CHECK(p >= 0.0 && p <= 1.0, "Dropout2d: p must be in [0, 1], got ", p);
}

Tensor Dropout2d::forward(const Tensor& x) {
  check_rank(x, {3, 4});
  return dropout2d(x, p_, is_training());
}

}  // namespace shallow::nn
