#pragma once
// EEG encoders: each maps a batch of trials [N, channels, times] to embeddings [N, embed_dim].
// Input sizes come from the data; embed_dim is what the contrastive head projects from.
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace shallow::models {

struct EegShape {
  int64_t channels = 0;  // C: 17 or 63 in THINGS-EEG2
  int64_t times = 0;     // T: 100 or 250
};

class EegEncoder : public nn::Module {
 public:
  using nn::Module::Module;
  // x [N, C, T] -> [N, embed_dim()]
  Tensor forward(const Tensor& x) override = 0;
  virtual int64_t embed_dim() const = 0;
};

// The encoders by name: "eegproject", "tsconv" (NICE), "atms" (ATM-S), "eegnet", "shallownet".
// embed_dim 0 picks the encoder's published default. Throws on an unknown name, listing them.
std::shared_ptr<EegEncoder> make_eeg_encoder(const std::string& name, EegShape shape,
                                             int64_t embed_dim = 0);
std::vector<std::string> eeg_encoder_names();

}  // namespace shallow::models
