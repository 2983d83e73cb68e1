#include "engine/nn/module.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "engine/autograd.h"

namespace shallow::nn {

Tensor Module::forward(const Tensor&) {
  throw Error(type_name_ + ": this module does not take a single input; call its own forward");
}

// ---- registration

void Module::check_new_name(const std::string& name, const char* what) const {
  SH_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name_, ": ", what,
           " name '", name, "' must be non-empty and contain no '.'");
  auto taken = [&](const auto& list) {
    for (const auto& [n, _] : list)
      if (n == name) return true;
    return false;
  };
  SH_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), type_name_, ": ", what,
           " name '", name, "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_new_name(name, "parameter");
  SH_CHECK(value.defined(), type_name_, ": parameter '", name, "' is undefined");
  // A parameter is a leaf of its own, whatever made its initial values.
  if (!value.is_leaf()) value = value.detach();
  value.set_requires_grad(true);
  params_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name, "buffer");
  SH_CHECK(value.defined(), type_name_, ": buffer '", name, "' is undefined");
  value = value.detach();
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "submodule");
  SH_CHECK(module != nullptr, type_name_, ": submodule '", name, "' is null");
  module->train(training_);
  children_.emplace_back(name, std::move(module));
}

// ---- lookups

void Module::collect(const std::string& prefix, NamedTensors* params, NamedTensors* buffers) const {
  if (params)
    for (const auto& [n, t] : params_) params->emplace_back(prefix + n, t);
  if (buffers)
    for (const auto& [n, t] : buffers_) buffers->emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", params, buffers);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", &out, nullptr);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", nullptr, &out);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (const auto& [n, m] : children_) {
    out.emplace_back(n, m);
    for (auto& [sub, sm] : m->named_modules()) out.emplace_back(n + "." + sub, sm);
  }
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

// A dotted name: the last part is looked up in the submodule the rest leads to.
const Module& Module::owner_of(const std::string& name, std::string* local) const {
  const size_t dot = name.find('.');
  if (dot == std::string::npos) {
    *local = name;
    return *this;
  }
  return child(name.substr(0, dot))->owner_of(name.substr(dot + 1), local);
}

Tensor Module::parameter(const std::string& name) const {
  std::string local;
  const Module& m = owner_of(name, &local);
  for (const auto& [n, t] : m.params_)
    if (n == local) return t;
  throw Error(type_name_ + ": no parameter named '" + name + "'");
}

Tensor Module::buffer(const std::string& name) const {
  std::string local;
  const Module& m = owner_of(name, &local);
  for (const auto& [n, t] : m.buffers_)
    if (n == local) return t;
  throw Error(type_name_ + ": no buffer named '" + name + "'");
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (const auto& [n, m] : children_)
    if (n == name) return m;
  throw Error(type_name_ + ": no submodule named '" + name + "'");
}

void Module::check_rank(const Tensor& x, const std::vector<int64_t>& ranks) const {
  for (int64_t r : ranks)
    if (x.dim() == r) return;
  std::ostringstream want;
  const char* sep = "";
  for (int64_t r : ranks) { want << sep << r << "-D"; sep = " or "; }
  throw Error(str_cat(type_name_, ": expected a ", want.str(), " input, got shape ",
                      shape_str(x.shape())));
}

// ---- modes and state

void Module::train(bool on) {
  training_ = on;
  for (auto& [_, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

void Module::to(Device device) {
  NamedTensors all;
  collect("", &all, &all);
  for (auto& [name, t] : all) {
    if (t.device() == device) continue;  // also a tensor registered twice, moved already
    // Rebind the tensor's own storage: every handle to it sees the moved values.
    const Tensor moved = t.detach().to(device).contiguous();
    TensorImpl& impl = *t.impl_ptr();
    impl.storage = moved.impl_ptr()->storage;
    impl.strides = moved.strides();
    impl.offset = moved.offset();
    impl.grad.reset();
  }
}

StateDict Module::state_dict() const {
  NamedTensors all;
  collect("", &all, &all);
  StateDict out;
  for (auto& [n, t] : all) out[n] = t.detach();
  return out;
}

LoadResult Module::load_state_dict(const StateDict& state, bool strict) {
  NamedTensors own;
  collect("", &own, &own);

  LoadResult result;
  std::vector<std::string> mismatched;
  std::set<std::string> own_names;
  for (auto& [name, t] : own) {
    own_names.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      result.missing.push_back(name);
    } else if (it->second.shape() != t.shape()) {
      mismatched.push_back(name + ": expected " + shape_str(t.shape()) + ", got " +
                           shape_str(it->second.shape()));
    }
  }
  for (auto& [name, _] : state)
    if (!own_names.count(name)) result.unexpected.push_back(name);
  std::sort(result.missing.begin(), result.missing.end());  // the state dict's order

  const bool names_fail = strict && (!result.missing.empty() || !result.unexpected.empty());
  if (names_fail || !mismatched.empty()) {
    std::ostringstream msg;
    msg << "load_state_dict into " << type_name_ << ":";
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      msg << "\n  " << what << " (" << names.size() << "):";
      for (const auto& n : names) msg << "\n    " << n;
    };
    if (strict) {
      list("missing", result.missing);
      list("unexpected", result.unexpected);
    }
    list("shape mismatch", mismatched);
    throw Error(msg.str());
  }

  // Copy only after every check has passed, so that a failed load changes nothing.
  NoGrad no_grad;
  for (auto& [name, t] : own) {
    auto it = state.find(name);
    if (it != state.end()) t.copy_(it->second);
  }
  return result;
}

}  // namespace shallow::nn
