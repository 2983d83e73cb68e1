// shallow eval: a trained checkpoint's 200-way zero-shot retrieval on test EEG and the test
// images' features; writes metrics.json (fractions) with the run's settings.
#include <filesystem>
#include <memory>
#include <ostream>

#include "apps/decoding/checkpoint.h"
#include "apps/decoding/evaluate.h"
#include "apps/decoding/features.h"
#include "apps/decoding/pipeline.h"
#include "apps/shallow/commands.h"
#include "engine/threads.h"

namespace shallow::cli {
namespace {
namespace fs = std::filesystem;
using namespace shallow::decoding;

struct EvalFlags {
  std::string checkpoint, eeg_test, features_test, out;
  int threads = 0;
};

int eval(const EvalFlags& f, Streams& s) {
  if (f.threads > 0) set_num_threads(f.threads);
  if (!f.out.empty()) check_output_dir(f.out);
  const Checkpoint c = read_checkpoint(f.checkpoint);
  const EegRecording recording = read_eeg_file(f.eeg_test);
  const EegSamples test = prepare_for_model(recording, c.spec);
  const Features features = read_features(f.features_test, Split::test);
  check_feature_rows(features, test.images, f.eeg_test);
  DecodingModel model(c.spec);
  model.check_features(features.x, f.features_test);
  model.check_eeg(test.eeg, f.eeg_test);
  model.load_state_dict(c.model);
  model.eval();

  const Retrieval r = evaluate_retrieval(model, test.eeg, test.image, features.x);
  const fs::path out_dir = f.out.empty() ? fs::path(checkpoint_file(f.checkpoint)).parent_path() : fs::path(f.out);
  const std::string metrics = (out_dir / "metrics.json").string();
  nlohmann::json settings = {{"checkpoint", checkpoint_file(f.checkpoint)},
                             {"eeg_test", f.eeg_test},
                             {"features_test", f.features_test},
                             {"dataset", dataset_label(recording.simulated)},
                             {"simulated", recording.simulated},
                             {"model", c.spec.to_json()},
                             {"trained_epochs", c.epoch},
                             {"training", c.training},
                             {"training_run", c.run}};
  if (!out_dir.empty()) fs::create_directories(out_dir);
  write_json_file(metrics, metrics_json(r, settings));
  s.out << r.candidates << "-way zero-shot retrieval: top-1 " << r.top1 << ", top-5 " << r.top5 << " (chance "
        << 1.0 / double(r.candidates) << ")" << (recording.simulated ? "  [SIMULATED data]" : "") << "\nwrote "
        << metrics << "\n";
  return 0;
}

}  // namespace

void add_eval(CLI::App& app, Action* action) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* sub = app.add_subcommand(
      "eval", "200-way zero-shot retrieval of a trained checkpoint on test EEG; writes metrics.json");
  sub->add_option("--checkpoint", f->checkpoint, "a training folder (OUT of shallow train) or its checkpoint file")
      ->required();
  sub->add_option("--eeg-test", f->eeg_test, "preprocessed test EEG (THINGS-EEG2 .npy)")->required();
  sub->add_option("--features-test", f->features_test, "the test images' features of the layer trained against")
      ->required();
  sub->add_option("--out", f->out, "the folder for metrics.json (default: the checkpoint's)");
  sub->add_option("--threads", f->threads, "compute threads (default: all)");
  sub->callback([f, action] { *action = [f](Streams& s) { return eval(*f, s); }; });
}

}  // namespace shallow::cli
