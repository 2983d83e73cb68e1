#include "apps/decoding/sweep.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <ostream>

#include "models/pooling.h"

namespace shallow::decoding {
namespace fs = std::filesystem;

std::pair<double, double> mean_std(const std::vector<double>& v) {
  if (v.empty()) return {0.0, 0.0};
  double m = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  if (v.size() < 2) return {m, 0.0};
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return {m, std::sqrt(ss / double(v.size() - 1))};
}

const LayerResult* SweepResult::best_numbered() const {
  const LayerResult* best = nullptr;
  for (const LayerResult& l : layers)
    if (l.layer != models::kFinalLayer && (!best || l.top1_mean > best->top1_mean)) best = &l;
  return best;
}

const LayerResult* SweepResult::final_layer() const {
  for (const LayerResult& l : layers)
    if (l.layer == models::kFinalLayer) return &l;
  return nullptr;
}

namespace {

struct LayerData {
  Features train, test;
};

LayerData read_layer(const LayerFiles& files, const EegData& eeg) {
  LayerData d{read_features(files.train, Split::train), read_features(files.test, Split::test)};
  check_feature_rows(d.train, eeg.train.images, eeg.train.sources.front());
  check_feature_rows(d.test, eeg.test.images, eeg.test.sources.front());
  SH_CHECK(d.train.x.size(1) == d.test.x.size(1), files.test, ": features of size ", d.test.x.size(1),
           " but the training features ", files.train, " have ", d.train.x.size(1));
  return d;
}

}  // namespace

SweepResult run_sweep(const EegData& eeg, const std::vector<LayerFiles>& files, const SweepOptions& o,
                      std::ostream& log) {
  SH_CHECK(!files.empty(), "sweep: no layer files");
  SH_CHECK(!o.seeds.empty(), "sweep: no seeds");
  // Every file is checked before the first training, so bad input costs no time and leaves
  // nothing behind.
  int64_t deepest = 0;
  for (const LayerFiles& f : files) {
    read_layer(f, eeg);
    deepest = std::max(deepest, f.layer);
  }
  const int64_t blocks = o.depth > 0 ? o.depth : deepest;

  SweepResult result;
  result.simulated = eeg.train.simulated || eeg.test.simulated;
  result.candidates = eeg.test.images;
  for (const LayerFiles& f : files) {
    const LayerData d = read_layer(f, eeg);
    LayerResult r;
    r.layer = f.layer;
    r.name = models::layer_name(f.layer);
    r.depth = f.layer == models::kFinalLayer ? 1.0 : (blocks > 0 ? double(f.layer) / double(blocks) : 0.0);
    r.dim = d.train.x.size(1);

    ModelSpec spec = o.model;
    spec.channels = eeg.train.eeg.size(1);
    spec.times = eeg.train.eeg.size(2);
    spec.image_dim = r.dim;
    spec.ch_names = eeg.train.ch_names;
    spec.zscore = eeg.zscore;
    const TrainData data{eeg.train.eeg, eeg.train.image, d.train.x};
    for (uint64_t seed : o.seeds) {
      const auto started = std::chrono::steady_clock::now();
      TrainOptions t = o.train;
      t.seed = seed;
      t.progress = false;
      t.checkpoint.clear();
      t.resume = false;
      TrainResult trained = train_model(data, spec, t, log);
      const Retrieval ret = evaluate_retrieval(*trained.model, eeg.test.eeg, eeg.test.image, d.test.x);
      r.top1.push_back(ret.top1);
      r.top5.push_back(ret.top5);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      char line[200];
      std::snprintf(line, sizeof line, "layer %-5s (depth %.2f, dim %lld)  seed %llu  top1 %.3f  top5 %.3f  loss %.3f  %.1f s",
                    r.name.c_str(), r.depth, (long long)r.dim, (unsigned long long)seed, ret.top1, ret.top5,
                    trained.history.empty() ? 0.0 : trained.history.back().loss, seconds);
      log << line << std::endl;
      if (o.write_runs && !o.out_dir.empty()) {
        const fs::path dir = fs::path(o.out_dir) / "runs" / ("layer_" + r.name) / ("seed_" + std::to_string(seed));
        fs::create_directories(dir);
        nlohmann::json settings = {{"layer", r.name},           {"features_train", f.train},
                                   {"features_test", f.test},   {"model", spec.to_json()},
                                   {"training", t.to_json()},   {"run", o.train.run}};
        write_json_file((dir / "metrics.json").string(), metrics_json(ret, settings));
      }
    }
    std::tie(r.top1_mean, r.top1_std) = mean_std(r.top1);
    std::tie(r.top5_mean, r.top5_std) = mean_std(r.top5);
    result.layers.push_back(r);
  }
  return result;
}

}  // namespace shallow::decoding
