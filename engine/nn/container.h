#pragma once
// Containers: Sequential chains single-input modules; ModuleList only holds them (for models
// whose forward loops over blocks). Children are named "0", "1", ... as in PyTorch.
#include <initializer_list>
#include <memory>
#include <vector>

#include "engine/nn/module.h"

namespace shallow::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<ModulePtr> modules);
  void push_back(ModulePtr module);
  Tensor forward(const Tensor& x) override;

  size_t size() const { return layers_.size(); }
  const ModulePtr& operator[](size_t i) const;

 private:
  std::vector<ModulePtr> layers_;
};

class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  void push_back(ModulePtr module);

  size_t size() const { return items_.size(); }
  const ModulePtr& operator[](size_t i) const;
  // The i-th module as its own type (throws if it is another type).
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    SH_CHECK(m != nullptr, "ModuleList: item ", i, " is a ", (*this)[i]->type_name());
    return m;
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<ModulePtr> items_;
};

}  // namespace shallow::nn
