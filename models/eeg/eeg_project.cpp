#include "models/eeg/eeg_project.h"

#include "models/eeg/input_check.h"
#include "models/eeg/projection_head.h"

namespace shallow::models {

EegProject::EegProject(EegShape shape, int64_t proj_dim, double dropout)
    : EegEncoder("EEGProject"), shape_(shape), proj_dim_(proj_dim) {
  check_eeg_shape(shape, "EEGProject");
  SH_CHECK(proj_dim > 0, "EEGProject: proj_dim must be positive, got ", proj_dim);
  model_ = register_module("model",
                           make_projection_head(shape.channels * shape.times, proj_dim, dropout));
}

Tensor EegProject::forward(const Tensor& x) {
  check_eeg_input(x, shape_, "EEGProject");
  return model_->forward(x.reshape({x.size(0), shape_.channels * shape_.times}));
}

}  // namespace shallow::models
