#include "engine/optim/sgd.h"

#include "engine/cuda/optim_ops.h"
#include "kernels/cpu/optim.h"

namespace shallow::optim {

SGD::SGD(std::vector<Tensor> params, SgdOptions opt)
    : SGD(std::vector<ParamGroup>{ParamGroup{"", std::move(params), {}, {}}}, opt) {}

SGD::SGD(std::vector<ParamGroup> groups, SgdOptions opt)
    : Optimizer("SGD", std::move(groups), opt.lr, opt.weight_decay), opt_(opt) {
  SH_CHECK(opt.momentum >= 0, "SGD: momentum must be >= 0, got ", opt.momentum);
  SH_CHECK(!opt.nesterov || (opt.momentum > 0 && opt.dampening == 0),
           "SGD: nesterov needs momentum > 0 and dampening 0, got momentum ", opt.momentum,
           ", dampening ", opt.dampening);
}

std::vector<std::string> SGD::buffer_names() const {
  if (opt_.momentum == 0) return {};
  return {"momentum_buffer"};
}

void SGD::update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) {
  cpu::SgdHyper h{group.lr, opt_.momentum, opt_.dampening, group.weight_decay, opt_.nesterov};
  bool first = false;
  Tensor buf = opt_.momentum != 0 ? buffer(state, "momentum_buffer", param, &first) : Tensor();
  if (param.device().is_cuda()) {
    gpu::sgd_update(param, grad, buf, first, h, "SGD");
    return;
  }
  SH_DISPATCH_FLOAT(param.dtype(), "SGD", [&] {
    cpu::sgd_update<scalar_t>(param.numel(), param.data<scalar_t>(), grad.data<scalar_t>(),
                              buf.defined() ? buf.data<scalar_t>() : nullptr, first, h);
  });
}

}  // namespace shallow::optim
