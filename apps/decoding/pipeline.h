#pragma once
// What `shallow train`, `sweep` and `eval` share: where the EEG comes from (files, or a
// THINGS-EEG2 folder and a protocol), loading it as the options say, and describing the run
// for metrics.json and the checkpoints.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/decoding/decoding_model.h"
#include "apps/decoding/things_eeg.h"

namespace shallow::decoding {

struct EegSource {
  std::vector<std::string> train_files;  // one per subject
  std::string test_file;
  std::string things_root;  // instead of the files: sub-XX folders
  int subject = 0;          // 1-based, with things_root
  bool inter_subject = false;
  EegOptions options;

  // The files to read and how the protocol reads: checks that exactly one way was chosen.
  ProtocolFiles resolve() const;
};

struct LoadedEeg {
  EegData data;
  nlohmann::json run;  // files, protocol, preprocessing, and whether the data are simulated
};
LoadedEeg load_eeg_source(const EegSource& source);

// Throws unless `dir` is a folder or does not exist yet (it is made only once the inputs are
// known to be good).
void check_output_dir(const std::string& dir);

// The dataset's name for reports: "SIMULATED (built-in simulator, not recorded EEG)" or
// "recorded EEG (THINGS-EEG2 format)".
std::string dataset_label(bool simulated);

// Trials of a test file prepared for a trained model: averaged, its channels picked by name
// (when the file has them all and differs), z-scored with the model's statistics. Throws a
// clear message when the channels cannot match.
EegSamples prepare_for_model(const EegRecording& recording, const ModelSpec& spec);

}  // namespace shallow::decoding
