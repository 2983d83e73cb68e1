#pragma once
// Learning-rate schedules. Each is a function of the step number (lr_at) and a step() that
// advances it and sets the optimizer's learning rates, as PyTorch's schedulers: construction
// sets step 0's rate; call step() after each optimizer.step(). Every group follows the schedule
// scaled from its own base rate (the rate it had when the schedule was made).
#include <cstdint>
#include <vector>

#include "engine/optim/optimizer.h"

namespace shallow::optim {

class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  // The rate at `step` for a group whose base rate is base_lr.
  virtual double lr_at(int64_t step, double base_lr) const = 0;
  double lr_at(int64_t step) const { return lr_at(step, base_lrs_.at(0)); }  // first group

  void step() { set_step(step_ + 1); }
  int64_t current_step() const { return step_; }
  void set_step(int64_t step);  // to resume: sets the rates for that step

 protected:
  explicit LRSchedule(Optimizer& opt);
  void start() { set_step(0); }  // called by each schedule's constructor

 private:
  Optimizer& opt_;
  std::vector<double> base_lrs_;
  int64_t step_ = 0;
};

// Linear warmup from 0 to the base rate over warmup_steps (step / warmup_steps), then a cosine
// from the base rate down to min_lr at total_steps, flat after. This is
// transformers.get_cosine_schedule_with_warmup with a floor; with no warmup it equals
// torch's CosineAnnealingLR(T_max = total_steps, eta_min = min_lr) up to total_steps.
class CosineWithWarmup : public LRSchedule {
 public:
  CosineWithWarmup(Optimizer& opt, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0);
  using LRSchedule::lr_at;
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t warmup_, total_;
  double min_lr_;
};

// base_lr * gamma^(step / step_size), as torch's StepLR.
class StepDecay : public LRSchedule {
 public:
  StepDecay(Optimizer& opt, int64_t step_size, double gamma = 0.1);
  using LRSchedule::lr_at;
  double lr_at(int64_t step, double base_lr) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

}  // namespace shallow::optim
