#include "apps/decoding/pipeline.h"

#include <algorithm>
#include <filesystem>

namespace shallow::decoding {
using json = nlohmann::json;

ProtocolFiles EegSource::resolve() const {
  const bool files = !train_files.empty() || !test_file.empty();
  const bool folder = !things_root.empty();
  SH_CHECK(files != folder, files ? "give either --eeg-train/--eeg-test or --things with --subject, not both"
                                  : "no EEG given: use --eeg-train and --eeg-test, or --things DIR --subject N");
  if (folder) {
    SH_CHECK(subject > 0, "--things needs --subject N (the held-out subject for --inter-subject)");
    return things_protocol(things_root, subject, inter_subject);
  }
  SH_CHECK(!inter_subject, "--inter-subject goes with --things DIR --subject N");
  SH_CHECK(!train_files.empty() && !test_file.empty(), "both --eeg-train and --eeg-test are needed");
  ProtocolFiles p;
  p.train = train_files;
  p.test = test_file;
  p.description = train_files.size() == 1 ? "one training file" : std::to_string(train_files.size()) + " training files";
  return p;
}

void check_output_dir(const std::string& dir) {
  SH_CHECK(!dir.empty(), "no output folder given");
  std::error_code ec;
  SH_CHECK(!std::filesystem::exists(dir, ec) || std::filesystem::is_directory(dir, ec), dir,
           ": exists and is not a folder");
}

std::string dataset_label(bool simulated) {
  return simulated ? "SIMULATED (built-in simulator, not recorded EEG)" : "recorded EEG (THINGS-EEG2 format)";
}

LoadedEeg load_eeg_source(const EegSource& source) {
  const ProtocolFiles files = source.resolve();
  LoadedEeg out;
  out.data = load_eeg(files.train, files.test, source.options);
  const bool simulated = out.data.train.simulated || out.data.test.simulated;
  out.run = {{"dataset", dataset_label(simulated)},
             {"simulated", simulated},
             {"protocol", files.description},
             {"eeg_train", files.train},
             {"eeg_test", files.test},
             {"average_repetitions", source.options.average_repetitions},
             {"zscore", source.options.zscore},
             {"channels", out.data.train.ch_names},
             {"train_samples", out.data.train.eeg.size(0)},
             {"train_images", out.data.train.images},
             {"test_images", out.data.test.images}};
  return out;
}

namespace {

std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 6; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 6) out += ", ...";
  return out;
}

}  // namespace

EegSamples prepare_for_model(const EegRecording& recording, const ModelSpec& spec) {
  std::vector<std::string> pick;
  if (recording.ch_names != spec.ch_names) {
    const bool has_all = std::all_of(spec.ch_names.begin(), spec.ch_names.end(), [&](const std::string& n) {
      return std::find(recording.ch_names.begin(), recording.ch_names.end(), n) != recording.ch_names.end();
    });
    SH_CHECK(has_all && !spec.ch_names.empty(), recording.path, ": has ", recording.channels(),
             " channels but the model was trained on ", spec.channels, " (", name_list(spec.ch_names),
             "), and the file does not have them all");
    pick = spec.ch_names;
  }
  EegSamples s = make_samples(recording, /*average_repetitions=*/true, pick);
  SH_CHECK(s.eeg.size(2) == spec.times, recording.path, ": has ", s.eeg.size(2),
           " time points but the model was trained on ", spec.times);
  if (!spec.zscore.empty()) apply_zscore(s.eeg, spec.zscore);
  return s;
}

}  // namespace shallow::decoding
