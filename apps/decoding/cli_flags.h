#pragma once
// The command-line flags that `shallow train`, `sweep` and `demo` share, in one place so that
// they read the same everywhere. Header-only: only the command-line files include it.
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apps/decoding/decoding_model.h"
#include "apps/decoding/pipeline.h"
#include "apps/decoding/train.h"
#include "engine/error.h"

namespace shallow::decoding {

// "Pz,O1, Oz" -> {"Pz", "O1", "Oz"}.
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    if (a != std::string::npos) out.push_back(item.substr(a, b - a + 1));
  }
  return out;
}

// "0,1,2" -> seeds; "3" alone means three seeds 0, 1, 2.
inline std::vector<uint64_t> parse_seeds(const std::string& text) {
  const std::vector<std::string> items = split_list(text);
  SH_CHECK(!items.empty(), "--seeds: expected a count or a comma-separated list, got '", text, "'");
  std::vector<uint64_t> seeds;
  for (const std::string& s : items) {
    SH_CHECK(!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 19,
             "--seeds: '", s, "' is not a seed (a non-negative integer)");
    seeds.push_back(std::stoull(s));
  }
  if (items.size() == 1) {
    const uint64_t n = seeds.front();
    SH_CHECK(n >= 1 && n <= 100, "--seeds ", n, ": give a count from 1 to 100 or a list like 0,1,2");
    seeds.clear();
    for (uint64_t i = 0; i < n; ++i) seeds.push_back(i);
  }
  return seeds;
}

struct EegFlags {
  EegSource source;
  std::string channels;  // comma-separated names
  bool keep_repetitions = false;

  EegSource resolved() const {
    EegSource s = source;
    s.options.channels = split_list(channels);
    s.options.average_repetitions = !keep_repetitions;
    return s;
  }
};

inline void add_eeg_flags(CLI::App* sub, EegFlags& f) {
  sub->add_option("--eeg-train", f.source.train_files,
                  "preprocessed training EEG (THINGS-EEG2 .npy); repeat or separate by commas for several "
                  "subjects")
      ->delimiter(',');
  sub->add_option("--eeg-test", f.source.test_file, "preprocessed test EEG");
  sub->add_option("--things", f.source.things_root, "a THINGS-EEG2 folder of sub-XX folders (instead of the files)");
  sub->add_option("--subject", f.source.subject, "with --things: the subject to test on (1-based)");
  sub->add_flag("--inter-subject", f.source.inter_subject,
                "with --things: train on every other subject, test on --subject");
  sub->add_flag("--keep-repetitions", f.keep_repetitions,
                "train on each repetition as its own sample (default: average them; test is always averaged)");
  sub->add_flag("--zscore", f.source.options.zscore, "z-score each channel with the training set's statistics");
  sub->add_option("--channels", f.channels, "keep only these channels, by name, comma-separated (e.g. O1,Oz,O2)");
}

inline void add_model_flags(CLI::App* sub, ModelSpec& m) {
  std::string names;
  for (const std::string& n : models::eeg_encoder_names()) names += (names.empty() ? "" : ", ") + n;
  sub->add_option("--encoder", m.encoder, "the EEG encoder: " + names)->capture_default_str();
  sub->add_option("--embed-dim", m.embed_dim, "the encoder's output size (default: its published one)");
  sub->add_option("--shared-dim", m.shared_dim, "the contrastive head's joint space")->capture_default_str();
}

inline void add_train_flags(CLI::App* sub, TrainOptions& t) {
  sub->add_option("--epochs", t.epochs, "training epochs")->capture_default_str();
  sub->add_option("--batch", t.batch_size, "samples per batch")->capture_default_str();
  sub->add_option("--lr", t.lr, "AdamW's learning rate")->capture_default_str();
  sub->add_option("--wd", t.weight_decay, "AdamW's weight decay")->capture_default_str();
  sub->add_flag("--cosine", t.cosine, "decay the learning rate to 0 along a cosine over the run");
  sub->add_option("--val-split", t.val_fraction,
                  "share of the training images held out to validate each epoch (e.g. 0.1)");
}

}  // namespace shallow::decoding
