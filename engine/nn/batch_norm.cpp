#include "engine/nn/batch_norm.h"

#include "engine/ops/norm.h"

namespace shallow::nn {

BatchNormBase::BatchNormBase(const char* type_name, int64_t num_features, BatchNormOptions opt,
                             std::initializer_list<int64_t> ranks)
    : Module(type_name), num_features_(num_features), opt_(opt), ranks_(ranks) {
  SH_CHECK(num_features > 0, type_name, ": num_features must be positive, got ", num_features);
  if (opt.affine) {
    weight = register_parameter("weight", Tensor::ones({num_features}, opt.dtype));
    bias = register_parameter("bias", Tensor::zeros({num_features}, opt.dtype));
  }
  if (opt.track_running_stats) {
    running_mean = register_buffer("running_mean", Tensor::zeros({num_features}, opt.dtype));
    running_var = register_buffer("running_var", Tensor::ones({num_features}, opt.dtype));
    num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
  }
}

Tensor BatchNormBase::forward(const Tensor& x) {
  check_rank(x, ranks_);
  SH_CHECK(x.size(1) == num_features_, type_name(), "(", num_features_,
           "): expected that many channels in dim 1, got shape ", shape_str(x.shape()));
  const bool tracking = running_mean.defined();
  // Batch statistics in training, and always when no running statistics are kept.
  const bool use_batch_stats = is_training() || !tracking;
  if (is_training() && tracking) num_batches_tracked.data<int64_t>()[0] += 1;
  // The op updates the running statistics when it is given them and uses batch statistics.
  return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, opt_.momentum,
                    opt_.eps);
}

}  // namespace shallow::nn
