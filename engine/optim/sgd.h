#pragma once
#include "engine/optim/optimizer.h"

namespace shallow::optim {

struct SgdOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // L2: added to the gradient
  bool nesterov = false;      // needs momentum > 0 and dampening == 0
};

// torch.optim.SGD: g += wd * p; buf = g on the first step, else momentum * buf +
// (1 - dampening) * g; g = nesterov ? g + momentum * buf : buf; p -= lr * g.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SgdOptions opt = {});
  SGD(std::vector<ParamGroup> groups, SgdOptions opt = {});

 protected:
  void update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> buffer_names() const override;

 private:
  SgdOptions opt_;
};

}  // namespace shallow::optim
