#include "apps/decoding/decoding_model.h"

namespace shallow::decoding {

nlohmann::json ModelSpec::to_json() const {
  return {{"encoder", encoder}, {"embed_dim", embed_dim}, {"shared_dim", shared_dim},
          {"channels", channels}, {"times", times},       {"image_dim", image_dim},
          {"ch_names", ch_names}, {"zscore", !zscore.empty()}};
}

ModelSpec ModelSpec::from_json(const nlohmann::json& j) {
  ModelSpec s;
  try {
    s.encoder = j.at("encoder").get<std::string>();
    s.embed_dim = j.at("embed_dim").get<int64_t>();
    s.shared_dim = j.at("shared_dim").get<int64_t>();
    s.channels = j.at("channels").get<int64_t>();
    s.times = j.at("times").get<int64_t>();
    s.image_dim = j.at("image_dim").get<int64_t>();
    s.ch_names = j.at("ch_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat("the model description is incomplete: ", e.what()));
  }
  return s;
}

DecodingModel::DecodingModel(const ModelSpec& spec) : nn::Module("DecodingModel"), spec_(spec) {
  SH_CHECK(spec.channels > 0 && spec.times > 0 && spec.image_dim > 0,
           "DecodingModel: channels, times and image_dim must be positive, got ", spec.channels, ", ",
           spec.times, ", ", spec.image_dim);
  encoder = register_module("encoder", models::make_eeg_encoder(spec.encoder, {spec.channels, spec.times},
                                                                spec.embed_dim));
  spec_.embed_dim = encoder->embed_dim();
  models::ContrastiveConfig head_config;
  head_config.eeg_dim = spec_.embed_dim;
  head_config.image_dim = spec.image_dim;
  head_config.shared_dim = spec.shared_dim;
  head = register_module("head", std::make_shared<models::ContrastiveHead>(head_config));
}

Tensor DecodingModel::embed_eeg(const Tensor& eeg) { return head->embed_eeg(encoder->forward(eeg)); }

Tensor DecodingModel::embed_image(const Tensor& features) { return head->embed_image(features); }

Tensor DecodingModel::loss(const Tensor& eeg, const Tensor& features) {
  return head->loss(embed_eeg(eeg), embed_image(features));
}

void DecodingModel::check_eeg(const Tensor& eeg, const std::string& source) const {
  SH_CHECK(eeg.dim() == 3, source, ": expected EEG [samples, channels, times], got shape ", shape_str(eeg.shape()));
  SH_CHECK(eeg.size(1) == spec_.channels, source, ": has ", eeg.size(1), " channels but the model was trained on ",
           spec_.channels);
  SH_CHECK(eeg.size(2) == spec_.times, source, ": has ", eeg.size(2), " time points but the model was trained on ",
           spec_.times);
}

void DecodingModel::check_features(const Tensor& features, const std::string& source) const {
  SH_CHECK(features.dim() == 2 && features.size(1) == spec_.image_dim, source, ": features of shape ",
           shape_str(features.shape()), " but the model was trained on features of size ", spec_.image_dim);
}

}  // namespace shallow::decoding
