#include "models/eeg/projection_head.h"

#include "engine/nn/activation.h"
#include "engine/nn/dropout.h"
#include "engine/nn/layer_norm.h"
#include "engine/nn/linear.h"
#include "engine/ops/elementwise.h"

namespace shallow::models {

ResidualAdd::ResidualAdd(nn::ModulePtr fn) : nn::Module("ResidualAdd") {
  fn_ = register_module("fn", std::move(fn));
}

Tensor ResidualAdd::forward(const Tensor& x) { return x + fn_->forward(x); }

std::shared_ptr<nn::Sequential> make_projection_head(int64_t in_dim, int64_t out_dim,
                                                     double dropout) {
  auto residual = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::GELU>(), std::make_shared<nn::Linear>(out_dim, out_dim),
      std::make_shared<nn::Dropout>(dropout)});
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(in_dim, out_dim),
      std::make_shared<ResidualAdd>(residual),
      std::make_shared<nn::LayerNorm>(out_dim)});
}

}  // namespace shallow::models
