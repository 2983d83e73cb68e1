#pragma once
// The projection head that NICE, ATM and EEGProject put after their feature extractors:
//   Linear(in, out) -> x + Dropout(Linear(GELU(x))) -> LayerNorm(out)
// built as the published code builds it (nn.Sequential with a ResidualAdd), so that its
// parameters carry the published names: "0.weight", "1.fn.1.weight", "2.weight", ...
#include <memory>

#include "engine/nn/container.h"
#include "engine/nn/module.h"

namespace shallow::models {

// x + fn(x); fn is registered as "fn".
class ResidualAdd : public nn::Module {
 public:
  explicit ResidualAdd(nn::ModulePtr fn);
  Tensor forward(const Tensor& x) override;

 private:
  nn::ModulePtr fn_;
};

std::shared_ptr<nn::Sequential> make_projection_head(int64_t in_dim, int64_t out_dim,
                                                     double dropout);

}  // namespace shallow::models
