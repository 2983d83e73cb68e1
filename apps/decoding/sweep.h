#pragma once
// The layer sweep: one training per layer's feature file and seed, each evaluated by test
// retrieval, so that top-1 can be read against the layer's depth (where the brain and the model
// meet). The EEG is prepared once and shared by every run.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "apps/decoding/decoding_model.h"
#include "apps/decoding/evaluate.h"
#include "apps/decoding/features.h"
#include "apps/decoding/things_eeg.h"
#include "apps/decoding/train.h"

namespace shallow::decoding {

struct SweepOptions {
  ModelSpec model;                 // encoder, embed and shared sizes (the rest comes from the data)
  TrainOptions train;              // the seed is replaced by each of `seeds`
  std::vector<uint64_t> seeds = {0, 1, 2};
  int64_t depth = 0;               // the backbone's block count; 0: the deepest numbered layer found
  std::string out_dir;             // each run's metrics.json under out_dir/runs/layer_<l>/seed_<s>/
  bool write_runs = true;
};

struct LayerResult {
  int64_t layer = 0;            // number, or kFinalLayer
  std::string name;             // "4", "final"
  double depth = 0;             // layer / blocks; the final embedding is 1
  int64_t dim = 0;              // its feature size
  std::vector<double> top1, top5;  // one per seed
  double top1_mean = 0, top1_std = 0, top5_mean = 0, top5_std = 0;
};

struct SweepResult {
  std::vector<LayerResult> layers;  // in order of depth, final last
  int64_t candidates = 0;           // the k of k-way retrieval
  bool simulated = false;

  // The numbered layer with the best mean top-1 (nullptr when only the final is there), and the
  // final layer's result (nullptr when absent).
  const LayerResult* best_numbered() const;
  const LayerResult* final_layer() const;
};

// Trains and evaluates every layer of `files` with every seed. Progress goes to `log`.
SweepResult run_sweep(const EegData& eeg, const std::vector<LayerFiles>& files, const SweepOptions& options,
                      std::ostream& log);

// Mean and sample standard deviation (0 for a single value).
std::pair<double, double> mean_std(const std::vector<double>& v);

}  // namespace shallow::decoding
