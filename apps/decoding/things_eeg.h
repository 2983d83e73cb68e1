#pragma once
// THINGS-EEG2 preprocessed data (see DESIGN.md, "Data"), and the two evaluation protocols.
//
// A subject's folder sub-XX holds preprocessed_eeg_training.npy and preprocessed_eeg_test.npy,
// each a dict saved with np.save (or, in some re-preprocessed releases, a bare pickle stream
// under the same name) with the keys
//   preprocessed_eeg_data  [images, repetitions, channels, times], float32 or float64
//   ch_names               list of str, one per channel
//   times                  seconds, one per time point
// Rows follow the sorted image order (training: 1654 concepts x 10 images; test: 200 x 1).
// A plain numeric .npy of rank 4 is read too (the simulated set is stored that way); its
// channels are then named ch1, ch2, ... and its times are sample numbers.
//
// Protocol (as the paper's): the test repetitions are always averaged; the training ones are
// averaged by default, or kept as separate samples of the same image. Z-scoring, when asked,
// uses per-channel statistics of the training samples (over samples and time) for both sets.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace shallow::decoding {

// One preprocessed file, as stored (converted to float32).
struct EegRecording {
  std::string path;
  Tensor data;  // [images, repetitions, channels, times], float32, contiguous
  std::vector<std::string> ch_names;
  std::vector<double> times;  // seconds (sample numbers for a plain array)
  bool simulated = false;     // a simulated.json sits beside the file (see simulated.h)

  int64_t images() const { return data.size(0); }
  int64_t repetitions() const { return data.size(1); }
  int64_t channels() const { return data.size(2); }
  int64_t time_points() const { return data.size(3); }
};

// Reads either stored form. Throws shallow::Error naming the file for a missing key, a rank
// other than 4, names or times that disagree with the data's shape, a non-float dtype, and
// NaN or infinity anywhere in the data (with the first position).
EegRecording read_eeg_file(const std::string& path);

// Trials ready for an encoder: one row per sample, each the response to one image.
struct EegSamples {
  Tensor eeg;                  // [samples, channels, times], float32, contiguous
  std::vector<int64_t> image;  // the image (row of the feature file) of each sample
  int64_t images = 0;          // how many images the rows refer to
  std::vector<std::string> ch_names;
  std::vector<double> times;
  std::vector<std::string> sources;  // the files the samples came from
  bool simulated = false;
};

// Per-channel mean and standard deviation, from the training samples.
struct ChannelStats {
  std::vector<float> mean, std;
  bool empty() const { return mean.empty(); }
};

struct EegOptions {
  bool average_repetitions = true;    // training only: the test set is always averaged
  bool zscore = false;                // channel-wise, with the training set's statistics
  std::vector<std::string> channels;  // keep only these, in this order; empty keeps all
};

// The training files (one per subject; their samples are concatenated, so they must share the
// images, channels and times) and the test file, prepared as the options say.
struct EegData {
  EegSamples train, test;
  ChannelStats zscore;  // empty unless options.zscore
};
EegData load_eeg(const std::vector<std::string>& train_files, const std::string& test_file,
                 const EegOptions& options);

// One file's samples: repetitions averaged or kept, channels selected.
EegSamples make_samples(const EegRecording& recording, bool average_repetitions,
                        const std::vector<std::string>& channels);
// Appends `more` to `into`; throws unless the channels, times and image counts agree.
void append_samples(EegSamples& into, const EegSamples& more);

ChannelStats channel_stats(const Tensor& eeg);  // eeg [samples, channels, times]
// (x - mean) / std per channel, in place; throws if the channel count differs.
void apply_zscore(Tensor& eeg, const ChannelStats& stats);

// ---- protocols over a THINGS-EEG2 folder (sub-01, sub-02, ...)

struct ProtocolFiles {
  std::vector<std::string> train;
  std::string test;
  std::string description;  // "intra-subject, sub-03" / "inter-subject, test sub-03, train sub-01, ..."
};
// The subject numbers found in `root` (folders named sub-XX with both files), sorted.
std::vector<int> list_subjects(const std::string& root);
// Intra-subject: train and test on `subject`. Inter-subject: train on every other subject,
// test on `subject`. Throws naming the folder when a file or subject is missing.
ProtocolFiles things_protocol(const std::string& root, int subject, bool inter_subject);

}  // namespace shallow::decoding
