#include "engine/nn/activation.h"

#include "engine/ops/elementwise.h"

namespace shallow::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

GELU::GELU(std::string approximate) : Module("GELU"), approximate_(std::move(approximate)) {
  SH_CHECK(approximate_ == "none" || approximate_ == "tanh",
           "GELU: approximate must be 'none' or 'tanh', got '", approximate_, "'");
}
Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate_); }

Tensor QuickGELU::forward(const Tensor& x) { return quick_gelu(x); }
Tensor ELU::forward(const Tensor& x) { return elu(x, alpha_); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }

}  // namespace shallow::nn
