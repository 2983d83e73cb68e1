#pragma once
// Optimizer: updates parameters from their .grad, with PyTorch's semantics, so that a run can be
// matched step by step. Parameters come as one list or as named groups, each group with its own
// learning rate and weight decay (e.g. no decay on biases and norms).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace shallow::optim {

using nn::StateDict;

struct ParamGroup {
  std::string name;  // optional; shown in errors
  std::vector<Tensor> params;
  std::optional<double> lr;            // the optimizer's own when unset
  std::optional<double> weight_decay;  // the optimizer's own when unset
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (those without one are left alone).
  void step();
  void zero_grad();  // drops the gradients

  const std::string& name() const { return name_; }
  size_t num_groups() const { return groups_.size(); }
  const std::string& group_name(size_t group) const { return group_at(group).name; }
  const std::vector<Tensor>& params(size_t group) const { return group_at(group).params; }
  double lr(size_t group = 0) const { return group_at(group).lr; }
  void set_lr(size_t group, double lr);
  void set_lr(double lr);  // every group
  double weight_decay(size_t group = 0) const { return group_at(group).weight_decay; }

  // Optimizer state, for resuming exactly: per parameter (numbered across groups in order)
  // "state.<i>.step" (i64) and "state.<i>.<buffer>" (e.g. exp_avg), and per group
  // "groups.<g>.lr" and "groups.<g>.weight_decay" (f64). The tensors are copies.
  StateDict state_dict() const;
  // Strict: names, parameter count and shapes must match this optimizer; nothing changes on error.
  void load_state_dict(const StateDict& state);

 protected:
  struct Group {
    std::string name;
    std::vector<Tensor> params;
    double lr = 0, weight_decay = 0;
  };
  // Per parameter: how many updates it had and its named buffers (made by update()).
  struct ParamState {
    int64_t step = 0;
    std::map<std::string, Tensor> buffers;
  };

  Optimizer(std::string name, std::vector<ParamGroup> groups, double lr, double weight_decay);

  // Updates one parameter in place. `state.step` already counts this update.
  virtual void update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) = 0;
  // The buffer names a parameter's state holds once it has been updated.
  virtual std::vector<std::string> buffer_names() const = 0;

  // A zero buffer shaped like the parameter, made on its first update.
  static Tensor& buffer(ParamState& state, const std::string& name, const Tensor& like,
                        bool* created = nullptr);

 private:
  const Group& group_at(size_t g) const;

  std::string name_;
  std::vector<Group> groups_;
  std::vector<ParamState> state_;  // one per parameter, across groups in order
};

}  // namespace shallow::optim
