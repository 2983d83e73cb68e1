#include "models/eeg/atms.h"

#include "models/eeg/input_check.h"
#include "models/eeg/projection_head.h"
#include "models/eeg/tsconv.h"

namespace shallow::models {

AtmsEncoder::AtmsEncoder(EegShape shape, int64_t proj_dim, double proj_dropout)
    : EegEncoder("ATMS"), shape_(shape), proj_dim_(proj_dim) {
  check_eeg_shape(shape, "ATMS");
  SH_CHECK(proj_dim > 0, "ATMS: proj_dim must be positive, got ", proj_dim);
  ChannelTransformerConfig config;
  config.times = shape.times;
  config.d_model = shape.times;  // as published: d_model = seq_len
  const int64_t features =
      TsconvPatchEmbedding::kFilters * TsconvPatchEmbedding::positions(config.d_model, "ATMS");
  encoder_ = register_module("encoder", std::make_shared<ChannelTransformer>(config));
  enc_eeg_ = register_module("enc_eeg", make_tsconv_features(shape.channels));
  proj_eeg_ = register_module("proj_eeg", make_projection_head(features, proj_dim, proj_dropout));
}

Tensor AtmsEncoder::forward(const Tensor& x) {
  check_eeg_input(x, shape_, "ATMS");
  return proj_eeg_->forward(enc_eeg_->forward(encoder_->forward(x)));
}

}  // namespace shallow::models
