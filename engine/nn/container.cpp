#include "engine/nn/container.h"

#include <string>

namespace shallow::nn {

Sequential::Sequential(std::initializer_list<ModulePtr> modules) : Module("Sequential") {
  for (const ModulePtr& m : modules) push_back(m);
}

void Sequential::push_back(ModulePtr module) {
  register_module(std::to_string(layers_.size()), module);
  layers_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const ModulePtr& m : layers_) h = m->forward(h);
  return h;
}

const ModulePtr& Sequential::operator[](size_t i) const {
  SH_CHECK(i < layers_.size(), "Sequential: index ", i, " out of range for ", layers_.size(),
           " modules");
  return layers_[i];
}

void ModuleList::push_back(ModulePtr module) {
  register_module(std::to_string(items_.size()), module);
  items_.push_back(std::move(module));
}

const ModulePtr& ModuleList::operator[](size_t i) const {
  SH_CHECK(i < items_.size(), "ModuleList: index ", i, " out of range for ", items_.size(),
           " modules");
  return items_[i];
}

}  // namespace shallow::nn
