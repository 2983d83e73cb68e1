#pragma once
// Batch normalization with PyTorch's buffers: running_mean (zeros), running_var (ones) and
// num_batches_tracked (i64 scalar), updated in training with momentum (running_var from the
// unbiased batch variance). In eval the running statistics normalize.
#include "engine/nn/module.h"

namespace shallow::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;               // weight (ones) and bias (zeros)
  bool track_running_stats = true;  // without it, batch statistics are used in eval too
  DType dtype = DType::f32;
};

class BatchNormBase : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  double eps() const { return opt_.eps; }
  // Whether forward normalizes with the running statistics (evaluation, with them kept): it is
  // then a fixed per-channel affine map (batch_norm_eval_affine).
  bool uses_running_stats() const { return !is_training() && running_mean.defined(); }

  Tensor weight, bias;                                    // undefined without affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without tracking

 protected:
  BatchNormBase(const char* type_name, int64_t num_features, BatchNormOptions opt,
                std::initializer_list<int64_t> ranks);

 private:
  int64_t num_features_;
  BatchNormOptions opt_;
  std::vector<int64_t> ranks_;
};

// x [N, C] or [N, C, L].
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(int64_t num_features, BatchNormOptions opt = {})
      : BatchNormBase("BatchNorm1d", num_features, opt, {2, 3}) {}
};

// x [N, C, H, W].
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormOptions opt = {})
      : BatchNormBase("BatchNorm2d", num_features, opt, {4}) {}
};

}  // namespace shallow::nn
