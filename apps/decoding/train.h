#pragma once
// Contrastive training of an EEG encoder against one layer's image features, as the paper
// trains it: AdamW (lr 1e-4, weight decay 1e-4 on every parameter), batches of 1024 in a fresh
// random order each epoch, 50 epochs, symmetric InfoNCE with a learnable temperature.
//
// Determinism: one seed drives the model's initial values, the order of the samples, dropout
// and the validation split; the generator's position is saved in each checkpoint, so a run
// resumed from epoch k ends with the same numbers as one that never stopped.
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/decoding/checkpoint.h"
#include "apps/decoding/decoding_model.h"

namespace shallow::decoding {

struct TrainOptions {
  int64_t epochs = 50;
  int64_t batch_size = 1024;
  double lr = 1e-4;
  double weight_decay = 1e-4;
  uint64_t seed = 0;
  bool cosine = false;        // cosine decay of the rate from lr to 0 over the whole run
  double val_fraction = 0.0;  // share of the training images held out for validation
  std::string checkpoint;     // written after every epoch when set
  bool resume = false;        // continue from `checkpoint` (which must exist)
  int64_t stop_after = 0;     // stop once this epoch is done (0: run to the end)
  bool progress = true;       // one line per epoch on the log stream
  nlohmann::json run;         // what the data are; stored in checkpoints

  // The options that shape the numbers (a resumed run must use the same ones).
  nlohmann::json to_json() const;
};

// The training set: trial i shows image image[i], whose features are row image[i].
struct TrainData {
  Tensor eeg;                  // [samples, C, T], float32 (already z-scored when asked)
  std::vector<int64_t> image;  // one per sample
  Tensor features;             // [images, dim], float32
};

struct TrainResult {
  std::shared_ptr<DecodingModel> model;  // in eval mode
  std::vector<EpochLog> history;         // every epoch, resumed ones included
  int64_t epochs_done = 0;
  bool finished = false;                 // false when stopped by stop_after
};

// Builds the model from `spec` (channels, times and image_dim must match the data), trains it,
// and writes a checkpoint after each epoch when options.checkpoint is set. Progress goes to `log`.
TrainResult train_model(const TrainData& data, const ModelSpec& spec, const TrainOptions& options,
                        std::ostream& log);

// The log as text, one line per epoch (what the progress lines said).
std::string format_epoch(const EpochLog& e, int64_t epochs);

}  // namespace shallow::decoding
