#pragma once
// Training checkpoints: one .safetensors file holding the model, the optimizer's state, the
// random generator's position and the epoch, so that a resumed run ends with exactly the numbers
// of an uninterrupted one. Written whole under a temporary name and renamed into place.
//
//   tensors   model.<name>       the DecodingModel's parameters and buffers
//             optimizer.<name>   AdamW's state (optim::Optimizer::state_dict)
//             zscore.mean/.std   the input's per-channel statistics, when z-scored
//   metadata  "shallow.checkpoint": JSON {format, model (ModelSpec), epoch, rng {seed, offset},
//             training (the options), history (one entry per epoch), run (data description)}
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/decoding/decoding_model.h"
#include "engine/nn/module.h"

namespace shallow::decoding {

struct EpochLog {
  int64_t epoch = 0;  // 1-based
  double loss = 0;    // mean training loss over the epoch's samples
  double lr = 0;      // the rate of the epoch's first step
  double seconds = 0;
  double val_loss = -1, val_top1 = -1;  // -1 without a validation split
};
nlohmann::json to_json(const EpochLog& e);
EpochLog epoch_log_from_json(const nlohmann::json& j);

struct Checkpoint {
  ModelSpec spec;
  nn::StateDict model, optimizer;
  int64_t epoch = 0;  // epochs completed
  uint64_t rng_seed = 0, rng_offset = 0;
  nlohmann::json training;  // the options that shape the numbers (checked on resume)
  nlohmann::json run;       // what the data were (files, protocol, simulated or not)
  std::vector<EpochLog> history;
};

void write_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// `path` is the file, or a folder holding checkpoint.safetensors.
Checkpoint read_checkpoint(const std::string& path);
std::string checkpoint_file(const std::string& path_or_dir);

}  // namespace shallow::decoding
