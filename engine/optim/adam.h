#pragma once
#include "engine/optim/optimizer.h"

namespace shallow::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2: added to the gradient
  bool amsgrad = false;
};

// AdamW's defaults differ from Adam's only in weight_decay (decoupled: p *= 1 - lr * wd).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};

// torch.optim.Adam and AdamW, with bias correction: m = lerp(m, g, 1 - beta1),
// v = beta2 v + (1 - beta2) g^2, p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// (with amsgrad, the running maximum of v replaces v in the denominator).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions opt = {});
  Adam(std::vector<ParamGroup> groups, AdamOptions opt = {});

 protected:
  Adam(const char* name, std::vector<ParamGroup> groups, AdamOptions opt, bool decoupled);
  void update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> buffer_names() const override;

 private:
  AdamOptions opt_;
  bool decoupled_;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions opt = {});
  AdamW(std::vector<ParamGroup> groups, AdamWOptions opt = {});
};

}  // namespace shallow::optim
