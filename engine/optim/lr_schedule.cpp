#include "engine/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace shallow::optim {

LRSchedule::LRSchedule(Optimizer& opt) : opt_(opt) {
  for (size_t g = 0; g < opt.num_groups(); ++g) base_lrs_.push_back(opt.lr(g));
}

void LRSchedule::set_step(int64_t step) {
  SH_CHECK(step >= 0, "learning-rate schedule: step must be >= 0, got ", step);
  step_ = step;
  for (size_t g = 0; g < base_lrs_.size(); ++g) opt_.set_lr(g, lr_at(step, base_lrs_[g]));
}

CosineWithWarmup::CosineWithWarmup(Optimizer& opt, int64_t warmup_steps, int64_t total_steps,
                                   double min_lr)
    : LRSchedule(opt), warmup_(warmup_steps), total_(total_steps), min_lr_(min_lr) {
  SH_CHECK(warmup_steps >= 0 && total_steps > warmup_steps,
           "CosineWithWarmup: need 0 <= warmup_steps < total_steps, got ", warmup_steps, " and ",
           total_steps);
  SH_CHECK(min_lr >= 0, "CosineWithWarmup: min_lr must be >= 0, got ", min_lr);
  start();
}

double CosineWithWarmup::lr_at(int64_t step, double base_lr) const {
  if (step < warmup_) return base_lr * double(step) / double(warmup_);
  const double progress =
      std::min(1.0, double(step - warmup_) / double(total_ - warmup_));
  return min_lr_ + (base_lr - min_lr_) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

StepDecay::StepDecay(Optimizer& opt, int64_t step_size, double gamma)
    : LRSchedule(opt), step_size_(step_size), gamma_(gamma) {
  SH_CHECK(step_size > 0, "StepDecay: step_size must be > 0, got ", step_size);
  SH_CHECK(gamma > 0, "StepDecay: gamma must be > 0, got ", gamma);
  start();
}

double StepDecay::lr_at(int64_t step, double base_lr) const {
  return base_lr * std::pow(gamma_, double(step / step_size_));
}

}  // namespace shallow::optim
