#include "engine/optim/adam.h"

#include "engine/cuda/ops.h"
#include "kernels/cpu/optim.h"

namespace shallow::optim {
namespace {

std::vector<ParamGroup> one_group(std::vector<Tensor> params) {
  return {ParamGroup{"", std::move(params), {}, {}}};
}

AdamOptions as_adam(const AdamWOptions& o) {
  return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad};
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions opt)
    : Adam("Adam", one_group(std::move(params)), opt, false) {}
Adam::Adam(std::vector<ParamGroup> groups, AdamOptions opt)
    : Adam("Adam", std::move(groups), opt, false) {}

Adam::Adam(const char* name, std::vector<ParamGroup> groups, AdamOptions opt, bool decoupled)
    : Optimizer(name, std::move(groups), opt.lr, opt.weight_decay), opt_(opt), decoupled_(decoupled) {
  SH_CHECK(opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1, name,
           ": betas must be in [0, 1), got (", opt.beta1, ", ", opt.beta2, ")");
  SH_CHECK(opt.eps >= 0, name, ": eps must be >= 0, got ", opt.eps);
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions opt)
    : Adam("AdamW", one_group(std::move(params)), as_adam(opt), true) {}
AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions opt)
    : Adam("AdamW", std::move(groups), as_adam(opt), true) {}

std::vector<std::string> Adam::buffer_names() const {
  if (opt_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) {
  cpu::AdamHyper h{group.lr,         opt_.beta1,  opt_.beta2, opt_.eps, group.weight_decay,
                   decoupled_,       opt_.amsgrad, state.step};
  Tensor m = buffer(state, "exp_avg", param);
  Tensor v = buffer(state, "exp_avg_sq", param);
  Tensor vmax = opt_.amsgrad ? buffer(state, "max_exp_avg_sq", param) : Tensor();
  if (param.device().is_cuda()) {
    gpu::adam_update(param, grad, m, v, vmax, h, name().c_str());
    return;
  }
  SH_DISPATCH_FLOAT(param.dtype(), name().c_str(), [&] {
    cpu::adam_update<scalar_t>(param.numel(), param.data<scalar_t>(), grad.data<scalar_t>(),
                               m.data<scalar_t>(), v.data<scalar_t>(),
                               vmax.defined() ? vmax.data<scalar_t>() : nullptr, h);
  });
}

}  // namespace shallow::optim
