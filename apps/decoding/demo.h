#pragma once
// `shallow demo`: the whole pipeline on the built-in simulated set, with nothing to download.
// Simulate (images, a random ViT, EEG planted in one of its layers), extract every layer's
// features to files as `shallow extract` would, sweep the layers with a few seeds, and report
// the table, the best layer against the final embedding, and the plot.
#include <iosfwd>
#include <string>
#include <vector>

#include "apps/decoding/simulated.h"
#include "apps/decoding/sweep.h"

namespace shallow::decoding {

struct DemoOptions {
  SimulationConfig simulation;
  ModelSpec model;       // encoder and sizes (the rest comes from the data)
  TrainOptions train;    // per run; the seed is each of `seeds`
  std::vector<uint64_t> seeds;
  bool zscore = true;
  std::string out_dir = "shallow-demo";
  bool save_eeg = false;  // also write the simulated EEG files (150 MB at the default size)
  std::string weights;    // a real backbone instead of the random ViT (any file `extract` reads)
};

// The default plan (under 5 minutes on two cores) or the quick one (under 1 minute).
DemoOptions demo_options(bool quick);

struct DemoResult {
  SweepResult sweep;
  std::vector<std::string> files;  // written, for the user
  std::string backbone;
  double seconds = 0;
};
DemoResult run_demo(const DemoOptions& options, std::ostream& log);

}  // namespace shallow::decoding
