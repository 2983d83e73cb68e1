#pragma once
// Module: the base of every layer. A module owns named parameters (trainable tensors), named
// buffers (state that is saved but not trained, like batch norm's running statistics) and named
// submodules. Names nest with dots, as PyTorch's: "blocks.0.attn.out.weight".
//
// Modules are held by std::shared_ptr. A subclass keeps its own handles to what it registers
// (a Tensor is a handle, so `weight = register_parameter("weight", ...)` and the registry refer
// to the same tensor), which keeps forward() readable.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace shallow::nn {

// Name -> tensor, as saved in checkpoints. Sorted by name (files store them that way too).
using StateDict = std::map<std::string, Tensor>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What a non-strict load_state_dict() left out.
struct LoadResult {
  std::vector<std::string> missing;     // in the module, not in the state dict
  std::vector<std::string> unexpected;  // in the state dict, not in the module
};

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The module's class, as "Linear"; used in errors.
  const std::string& type_name() const { return type_name_; }

  // Single-input modules override this; the default throws (multi-input modules have their own).
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // ---- what the module holds, in registration order, submodules' after the module's own
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }
  // Every module below this one (itself excluded), with its dotted path.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;
  int64_t num_parameters() const;  // total number of elements

  // ---- training mode (recursive): dropout and batch norm read it
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // ---- state dicts: parameters and buffers by dotted name. The tensors share storage with the
  // module (as PyTorch's), and carry no autograd history.
  StateDict state_dict() const;
  // Copies values into the module's tensors in place. strict: every name must match both ways.
  // Shapes must always match. Errors list every missing, unexpected and mismatched name.
  LoadResult load_state_dict(const StateDict& state, bool strict = true);

  void zero_grad();  // drops every parameter's gradient

  // Moves every parameter and buffer to `device` in place (as PyTorch's module.to(device)):
  // the tensors keep their identity, so the handles a subclass holds, the registry and an
  // optimizer built afterwards all see the moved values. Gradients are dropped. Build
  // optimizers after the move: one built before holds state on the old device.
  void to(Device device);

  // Parameters and buffers by name, dotted through submodules ("blocks.0.attn.in_proj_weight"),
  // and submodules by their local name; each throws if absent.
  Tensor parameter(const std::string& name) const;
  Tensor buffer(const std::string& name) const;
  std::shared_ptr<Module> child(const std::string& name) const;

  // Registration, public so that a model can assemble modules without subclassing. A parameter
  // is marked requires_grad; names must be unique within the module and contain no dot.
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 protected:
  // Throws unless x has one of the given ranks; names the module and the shape.
  void check_rank(const Tensor& x, const std::vector<int64_t>& ranks) const;

 private:
  void check_new_name(const std::string& name, const char* what) const;
  const Module& owner_of(const std::string& name, std::string* local) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, NamedTensors* params, NamedTensors* buffers) const;

  std::string type_name_;
  bool training_ = true;
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

using ModulePtr = std::shared_ptr<Module>;

}  // namespace shallow::nn
