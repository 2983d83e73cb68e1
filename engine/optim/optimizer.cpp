#include "engine/optim/optimizer.h"

#include <set>
#include <sstream>

#include "engine/autograd.h"

namespace shallow::optim {
namespace {

// "state.12.exp_avg" -> (12, "exp_avg"); false if the name is not of that form.
bool parse_indexed(const std::string& key, const std::string& prefix, size_t* index,
                   std::string* rest) {
  if (key.rfind(prefix, 0) != 0) return false;
  const size_t dot = key.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size() || dot + 1 == key.size()) return false;
  const std::string digits = key.substr(prefix.size(), dot - prefix.size());
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return false;
  *index = size_t(std::stoul(digits));
  *rest = key.substr(dot + 1);
  return true;
}

}  // namespace

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups, double lr,
                     double weight_decay)
    : name_(std::move(name)) {
  SH_CHECK(!groups.empty(), name_, ": no parameter groups");
  std::set<TensorImpl*> seen;
  for (size_t g = 0; g < groups.size(); ++g) {
    ParamGroup& in = groups[g];
    Group out{in.name.empty() ? "group " + std::to_string(g) : in.name, std::move(in.params),
              in.lr.value_or(lr), in.weight_decay.value_or(weight_decay)};
    SH_CHECK(out.lr >= 0, name_, ": learning rate of ", out.name, " must be >= 0, got ", out.lr);
    SH_CHECK(out.weight_decay >= 0, name_, ": weight decay of ", out.name, " must be >= 0, got ",
             out.weight_decay);
    for (size_t i = 0; i < out.params.size(); ++i) {
      const Tensor& p = out.params[i];
      SH_CHECK(p.defined(), name_, ": parameter ", i, " of ", out.name, " is undefined");
      SH_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, name_,
               ": parameters must be f32 or f64, got ", dtype_name(p.dtype()), " ",
               shape_str(p.shape()), " (parameter ", i, " of ", out.name, ")");
      SH_CHECK(p.is_leaf(), name_, ": cannot optimize a non-leaf tensor ", shape_str(p.shape()),
               " (parameter ", i, " of ", out.name, ")");
      SH_CHECK(p.is_contiguous(), name_, ": parameters must be contiguous (parameter ", i, " of ",
               out.name, ", ", shape_str(p.shape()), ")");
      SH_CHECK(seen.insert(p.impl_ptr()).second, name_, ": parameter ", i, " of ", out.name,
               " appears more than once");
    }
    groups_.push_back(std::move(out));
  }
  SH_CHECK(!seen.empty(), name_, ": got an empty parameter list");
  state_.resize(seen.size());
}

const Optimizer::Group& Optimizer::group_at(size_t g) const {
  SH_CHECK(g < groups_.size(), name_, ": group ", g, " out of range (", groups_.size(), " groups)");
  return groups_[g];
}

void Optimizer::set_lr(size_t group, double lr) {
  SH_CHECK(lr >= 0, name_, ": learning rate must be >= 0, got ", lr);
  group_at(group);
  groups_[group].lr = lr;
}

void Optimizer::set_lr(double lr) {
  for (size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
}

void Optimizer::step() {
  NoGrad no_grad;
  size_t index = 0;
  for (const Group& group : groups_) {
    for (Tensor param : group.params) {
      ParamState& state = state_[index++];
      Tensor grad = param.grad();
      if (!grad.defined()) continue;
      SH_CHECK(grad.dtype() == param.dtype() && grad.shape() == param.shape() &&
                   grad.device() == param.device(),
               name_, ": gradient ", dtype_name(grad.dtype()), " ", shape_str(grad.shape()), " on ",
               grad.device().str(), " does not match its parameter ", dtype_name(param.dtype()),
               " ", shape_str(param.shape()), " on ", param.device().str());
      state.step += 1;
      update(group, param, grad.contiguous(), state);
    }
  }
}

void Optimizer::zero_grad() {
  for (Group& group : groups_)
    for (Tensor& p : group.params) p.zero_grad();
}

Tensor& Optimizer::buffer(ParamState& state, const std::string& name, const Tensor& like,
                          bool* created) {
  auto it = state.buffers.find(name);
  if (created) *created = it == state.buffers.end();
  if (it == state.buffers.end()) {
    Tensor zeros = Tensor::zeros(like.shape(), like.dtype(), like.device());
    it = state.buffers.emplace(name, zeros).first;
  }
  return it->second;
}

StateDict Optimizer::state_dict() const {
  NoGrad no_grad;
  StateDict out;
  for (size_t i = 0; i < state_.size(); ++i) {
    if (state_[i].step == 0) continue;  // never updated: no state, as in PyTorch
    const std::string prefix = "state." + std::to_string(i) + ".";
    out[prefix + "step"] = Tensor::scalar(double(state_[i].step), DType::i64);
    for (const auto& [name, t] : state_[i].buffers) out[prefix + name] = t.clone();
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "groups." + std::to_string(g) + ".";
    out[prefix + "lr"] = Tensor::scalar(groups_[g].lr, DType::f64);
    out[prefix + "weight_decay"] = Tensor::scalar(groups_[g].weight_decay, DType::f64);
  }
  return out;
}

void Optimizer::load_state_dict(const StateDict& state) {
  NoGrad no_grad;
  std::vector<const Tensor*> params;
  for (const Group& g : groups_)
    for (const Tensor& p : g.params) params.push_back(&p);

  std::vector<ParamState> loaded(state_.size());
  std::vector<Group> groups = groups_;
  std::vector<std::set<std::string>> group_keys(groups.size());
  std::vector<std::string> errors;
  const std::vector<std::string> wanted = buffer_names();
  const std::set<std::string> wanted_set(wanted.begin(), wanted.end());

  for (const auto& [key, t] : state) {
    size_t i = 0;
    std::string field;
    if (parse_indexed(key, "state.", &i, &field)) {
      if (i >= params.size()) {
        errors.push_back(key + ": parameter " + std::to_string(i) + " out of range (" +
                         std::to_string(params.size()) + " parameters)");
      } else if (field == "step") {
        if (t.numel() != 1 || t.item() < 1) errors.push_back(key + ": expected a step count >= 1");
        else loaded[i].step = int64_t(t.item());
      } else if (!wanted_set.count(field)) {
        errors.push_back(key + ": " + name_ + " keeps no state named '" + field + "'");
      } else if (t.shape() != params[i]->shape()) {
        errors.push_back(key + ": expected shape " + shape_str(params[i]->shape()) + ", got " +
                         shape_str(t.shape()));
      } else {
        loaded[i].buffers[field] =
            t.to(params[i]->device()).to(params[i]->dtype()).contiguous().clone();
      }
    } else if (parse_indexed(key, "groups.", &i, &field) && i < groups.size() &&
               (field == "lr" || field == "weight_decay") && t.numel() == 1) {
      (field == "lr" ? groups[i].lr : groups[i].weight_decay) = t.item();
      group_keys[i].insert(field);
    } else {
      errors.push_back(key + ": unexpected");
    }
  }
  for (size_t i = 0; i < loaded.size(); ++i) {
    const bool any = loaded[i].step > 0 || !loaded[i].buffers.empty();
    if (any && (loaded[i].step == 0 || loaded[i].buffers.size() != wanted.size()))
      errors.push_back("state." + std::to_string(i) + ": incomplete (needs step and " +
                       std::to_string(wanted.size()) + " buffers)");
  }
  for (size_t g = 0; g < groups.size(); ++g)
    if (group_keys[g].size() != 2)
      errors.push_back("groups." + std::to_string(g) + ": missing lr or weight_decay");

  if (!errors.empty()) {
    std::ostringstream msg;
    msg << name_ << ".load_state_dict: " << errors.size() << " problem(s):";
    for (const auto& e : errors) msg << "\n  " << e;
    throw Error(msg.str());
  }
  state_ = std::move(loaded);
  groups_ = std::move(groups);
}

}  // namespace shallow::optim
