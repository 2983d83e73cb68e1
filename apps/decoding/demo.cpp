#include "apps/decoding/demo.h"

#include <chrono>
#include <filesystem>
#include <ostream>

#include "apps/decoding/extract_model.h"
#include "apps/decoding/report.h"

namespace shallow::decoding {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

DemoOptions demo_options(bool quick) {
  DemoOptions o;
  o.model.encoder = "eegproject";
  o.model.embed_dim = 256;  // smaller than the paper's 1024: the simulated set is small
  o.model.shared_dim = 256;
  o.train.batch_size = 128;
  o.train.lr = 1e-3;
  o.train.weight_decay = 1e-4;
  o.train.epochs = 20;
  o.seeds = {0, 1, 2};
  if (quick) {
    o.simulation.train_concepts = 200;
    o.train.epochs = 15;
    o.seeds = {0, 1};
  }
  return o;
}

DemoResult run_demo(const DemoOptions& o, std::ostream& log) {
  const auto started = std::chrono::steady_clock::now();
  DemoResult result;
  std::unique_ptr<models::Backbone> backbone;
  if (!o.weights.empty()) {
    LoadedBackbone loaded = load_backbone(o.weights);
    backbone = std::move(loaded.backbone);
  } else {
    backbone = models::make_backbone(make_random_vit(o.simulation), models::BackboneFamily::clip);
  }
  result.backbone = backbone->describe();
  const SimulationConfig& sim = o.simulation;
  log << "simulating " << sim.train_images() << " training and " << sim.test_concepts << " test images, EEG of "
      << sim.channels << " channels x " << sim.times << " times planted in layer " << sim.planted_layer << " of "
      << result.backbone << "\n";

  const SimulatedSet set = simulate(sim, backbone->layers(), backbone.get());
  write_simulated_set(set, o.out_dir, o.save_eeg);
  const double simulated_after = seconds_since(started);
  const fs::path features_dir = fs::path(o.out_dir) / "features";
  result.files.push_back(features_dir.string() + "/{train,test}/layer_*.npy");
  if (o.save_eeg) result.files.push_back((fs::path(o.out_dir) / "eeg").string() + "/preprocessed_eeg_*.npy");
  log << "extracted layers";
  for (int64_t l : set.layers) log << " " << models::layer_name(l);
  log << " (mean of the patch tokens) into " << features_dir.string() << " in " << simulated_after << " s\n";

  // The protocol as for recorded data: repetitions averaged, channels z-scored with the
  // training set's statistics.
  EegData eeg;
  eeg.train = make_samples(set.eeg.train, true, {});
  eeg.test = make_samples(set.eeg.test, true, {});
  if (o.zscore) {
    eeg.zscore = channel_stats(eeg.train.eeg);
    apply_zscore(eeg.train.eeg, eeg.zscore);
    apply_zscore(eeg.test.eeg, eeg.zscore);
  }

  SweepOptions sweep;
  sweep.model = o.model;
  sweep.train = o.train;
  sweep.train.run = {{"dataset", "SIMULATED (built-in simulator, not recorded EEG)"},
                     {"simulation", sim.to_json()},
                     {"backbone", result.backbone}};
  sweep.seeds = o.seeds;
  sweep.out_dir = o.out_dir;
  sweep.write_runs = false;
  result.sweep = run_sweep(eeg, find_layer_files(features_dir.string()), sweep, log);
  result.sweep.simulated = true;

  write_sweep_report(result.sweep, o.out_dir, "Top-1 retrieval against layer depth (planted: layer " +
                                                  std::to_string(sim.planted_layer) + ")");
  result.files.push_back((fs::path(o.out_dir) / "sweep.csv").string());
  result.files.push_back((fs::path(o.out_dir) / "sweep.svg").string());
  result.seconds = seconds_since(started);
  return result;
}

}  // namespace shallow::decoding
