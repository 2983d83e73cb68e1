// shallow sweep: one training per layer's feature file and seed, each evaluated by 200-way
// retrieval; writes OUT/sweep.csv, OUT/sweep.svg (top-1 against depth, final layer marked) and
// each run's metrics under OUT/runs/. With --weights and --images it extracts the layers first.
#include <filesystem>
#include <memory>
#include <ostream>

#include "apps/decoding/cli_flags.h"
#include "apps/decoding/extract.h"
#include "apps/decoding/report.h"
#include "apps/decoding/sweep.h"
#include "apps/shallow/commands.h"
#include "engine/allocator.h"
#include "engine/threads.h"

namespace shallow::cli {
namespace {
namespace fs = std::filesystem;
using namespace shallow::decoding;

struct SweepFlags {
  EegFlags eeg;
  std::string features, out, seeds = "3";
  ModelSpec model;
  TrainOptions train;
  int64_t depth = 0;
  int threads = 0;
  // Extracting first.
  std::string weights, images, layers = "all", pool = "cls";
};

int sweep(const SweepFlags& f, Streams& s) {
  if (f.threads > 0) set_num_threads(f.threads);
  const bool extract_first = !f.weights.empty() || !f.images.empty();
  SH_CHECK(!extract_first || (!f.weights.empty() && !f.images.empty()), "extracting first needs both --weights and --images");
  SH_CHECK(extract_first != !f.features.empty(),
           extract_first ? "give --features or --weights with --images, not both"
                         : "no features: give --features DIR (layer_<l>.npy files) or --weights and --images");
  check_output_dir(f.out);
  SweepOptions o;
  o.model = f.model;
  o.train = f.train;
  o.seeds = parse_seeds(f.seeds);
  o.depth = f.depth;
  o.out_dir = f.out;

  // The EEG is read and checked first: a mistake there costs no extraction.
  const LoadedEeg eeg = load_eeg_source(f.eeg.resolved());
  o.train.run = eeg.run;
  std::string features_dir = f.features;
  if (extract_first) {
    ExtractOptions x;
    x.weights = f.weights;
    x.images = f.images;
    x.out_dir = (fs::path(f.out) / "features").string();
    x.layers = f.layers;
    x.pooling = models::parse_pooling(f.pool);
    x.threads = f.threads;
    const ExtractResult extracted = run_extract(x, s.err);
    s.err << "extracted " << extracted.files.size() << " files in " << clock_text(extracted.seconds) << "\n";
    features_dir = x.out_dir;
  }
  const std::vector<LayerFiles> files = find_layer_files(features_dir);
  o.train.run["features"] = features_dir;
  s.err << "sweeping " << files.size() << " layers x " << o.seeds.size() << " seeds; "
        << eeg.run["dataset"].get<std::string>() << ", " << eeg.run["protocol"].get<std::string>() << "\n";
  const SweepResult result = run_sweep(eeg.data, files, o, s.err);
  write_sweep_report(result, f.out, "Top-1 retrieval against layer depth");
  s.out << sweep_table(result) << "wrote " << (fs::path(f.out) / "sweep.csv").string() << ", "
        << (fs::path(f.out) / "sweep.svg").string() << "\n";
  s.out << "peak memory: " << human_bytes(memory_stats().peak_bytes) << "\n";
  return 0;
}

}  // namespace

void add_sweep(CLI::App& app, Action* action) {
  auto f = std::make_shared<SweepFlags>();
  CLI::App* sub = app.add_subcommand(
      "sweep", "Train and evaluate against each layer's features (several seeds): OUT/sweep.csv and a plot of "
               "top-1 against depth, OUT/sweep.svg");
  add_eeg_flags(sub, f->eeg);
  sub->add_option("--features", f->features,
                  "a folder of layer_<l>.npy files (with images.txt covering training_images/ and test_images/), "
                  "or with train/ and test/ subfolders");
  sub->add_option("--out", f->out, "the folder to write into")->required();
  sub->add_option("--seeds", f->seeds, "a count (3: seeds 0,1,2) or a list (0,5,9)")->capture_default_str();
  sub->add_option("--depth", f->depth, "the backbone's block count, for relative depth (default: the deepest layer found)");
  add_model_flags(sub, f->model);
  add_train_flags(sub, f->train);
  sub->add_option("--weights", f->weights, "extract first: the backbone's weights (as shallow extract)");
  sub->add_option("--images", f->images, "extract first: the THINGS image folder (training_images/, test_images/)");
  sub->add_option("--layers", f->layers, "extract first: the layers")->capture_default_str();
  sub->add_option("--pool", f->pool, "extract first: cls, mean or all")->capture_default_str();
  sub->add_option("--threads", f->threads, "compute threads (default: all)");
  sub->callback([f, action] { *action = [f](Streams& s) { return sweep(*f, s); }; });
}

}  // namespace shallow::cli
