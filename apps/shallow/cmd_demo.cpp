// shallow demo [--quick]: the whole pipeline on the built-in simulated data set (no downloads):
// simulate, extract every layer, sweep, print the table and the best layer against the final
// one, and write the plot. See docs/SIMULATED_DATA.md for what the simulation is.
#include <filesystem>
#include <memory>
#include <ostream>

#include "apps/decoding/cli_flags.h"
#include "apps/decoding/demo.h"
#include "apps/decoding/pipeline.h"
#include "apps/decoding/extract.h"
#include "apps/decoding/report.h"
#include "apps/shallow/commands.h"
#include "engine/allocator.h"
#include "engine/threads.h"

namespace shallow::cli {
namespace {
using namespace shallow::decoding;

struct DemoFlags {
  bool quick = false, save_eeg = false;
  std::string out = "shallow-demo", seeds, weights;
  int threads = 0;
};

int demo(const DemoFlags& f, Streams& s) {
  if (f.threads > 0) set_num_threads(f.threads);
  check_output_dir(f.out);
  DemoOptions o = demo_options(f.quick);
  if (!f.seeds.empty()) o.seeds = parse_seeds(f.seeds);
  o.out_dir = f.out;
  o.save_eeg = f.save_eeg;
  o.weights = f.weights;
  s.err << "shallow demo" << (f.quick ? " --quick" : "") << ": SIMULATED data (docs/SIMULATED_DATA.md)\n";
  const DemoResult r = run_demo(o, s.err);
  s.out << sweep_table(r.sweep);
  const LayerResult* best = r.sweep.best_numbered();
  if (best) {
    const int64_t planted = o.simulation.planted_layer;
    const bool found = std::abs(best->layer - planted) <= 1;
    s.out << "planted layer: " << planted << "; the sweep's best: " << best->name
          << (best->layer == planted ? " (found it)" : found ? " (its neighbor)" : " (missed it)") << "\n";
  }
  for (const std::string& file : r.files) s.out << "wrote " << file << "\n";
  s.out << "took " << clock_text(r.seconds) << "\n";
  s.out << "peak memory: " << human_bytes(memory_stats().peak_bytes) << "\n";
  return 0;
}

}  // namespace

void add_demo(CLI::App& app, Action* action) {
  auto f = std::make_shared<DemoFlags>();
  CLI::App* sub = app.add_subcommand(
      "demo", "The whole pipeline on the built-in simulated data set: simulate EEG planted in one layer of a "
              "random ViT, extract every layer, sweep, print the table and write the plot");
  sub->add_flag("--quick", f->quick, "a smaller set and two seeds (under a minute on two cores)");
  sub->add_option("--out", f->out, "the folder to write into")->capture_default_str();
  sub->add_option("--seeds", f->seeds, "a count or a list (default: 3, or 2 with --quick)");
  sub->add_option("--weights", f->weights, "a real backbone instead of the random ViT (any file shallow extract reads)");
  sub->add_flag("--save-eeg", f->save_eeg, "also write the simulated EEG as THINGS-like .npy files (large)");
  sub->add_option("--threads", f->threads, "compute threads (default: all)");
  sub->callback([f, action] { *action = [f](Streams& s) { return demo(*f, s); }; });
}

}  // namespace shallow::cli
