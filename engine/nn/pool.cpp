#include "engine/nn/pool.h"

namespace shallow::nn {

Tensor MaxPool2d::forward(const Tensor& x) {
  check_rank(x, {4});
  return max_pool2d(x, kernel_, stride_, padding_);
}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_rank(x, {4});
  return avg_pool2d(x, kernel_, stride_, padding_);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  check_rank(x, {4});
  return adaptive_avg_pool2d(x, out_);
}

}  // namespace shallow::nn
