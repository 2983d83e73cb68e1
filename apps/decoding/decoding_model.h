#pragma once
// The model Shallow Alignment trains: an EEG encoder and the contrastive head that projects its
// output and one layer's image features into a shared space.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/decoding/things_eeg.h"
#include "engine/nn/module.h"
#include "models/contrastive.h"
#include "models/eeg/encoder.h"

namespace shallow::decoding {

// Everything needed to rebuild the model and prepare its input, as stored in checkpoints.
struct ModelSpec {
  std::string encoder = "eegproject";  // a name of models::eeg_encoder_names()
  int64_t embed_dim = 0;               // the encoder's output; 0: its published default
  int64_t shared_dim = 1024;           // the contrastive head's joint space
  int64_t channels = 0, times = 0;     // the EEG input [C, T]
  int64_t image_dim = 0;               // the feature size of the layer trained against
  std::vector<std::string> ch_names;   // the channels, in input order
  ChannelStats zscore;                 // applied to the input when not empty

  nlohmann::json to_json() const;  // without the z-score statistics (stored as tensors)
  static ModelSpec from_json(const nlohmann::json& j);
};

class DecodingModel : public nn::Module {
 public:
  explicit DecodingModel(const ModelSpec& spec);  // embed_dim 0 is resolved here
  const ModelSpec& spec() const { return spec_; }

  // [N, C, T] -> [N, shared], L2-normalized; [N, image_dim] -> [N, shared], L2-normalized.
  Tensor embed_eeg(const Tensor& eeg);
  Tensor embed_image(const Tensor& features);
  // Symmetric InfoNCE of a batch of pairs (row i of each is a positive pair).
  Tensor loss(const Tensor& eeg, const Tensor& features);

  // Throws a clear message unless eeg is [N, C, T] and features [N', image_dim] as trained.
  void check_eeg(const Tensor& eeg, const std::string& source) const;
  void check_features(const Tensor& features, const std::string& source) const;

  std::shared_ptr<models::EegEncoder> encoder;
  std::shared_ptr<models::ContrastiveHead> head;

 private:
  ModelSpec spec_;
};

}  // namespace shallow::decoding
