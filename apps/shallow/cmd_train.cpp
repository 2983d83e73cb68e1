// shallow train: an EEG encoder trained contrastively against one layer's image features, then
// evaluated by 200-way zero-shot retrieval. Writes OUT/checkpoint.safetensors (after every
// epoch), OUT/train.log and OUT/metrics.json.
#include <filesystem>
#include <memory>
#include <ostream>

#include "apps/decoding/cli_flags.h"
#include "apps/decoding/evaluate.h"
#include "apps/decoding/extract.h"
#include "apps/decoding/features.h"
#include "apps/shallow/commands.h"
#include "engine/allocator.h"
#include "engine/threads.h"

namespace shallow::cli {
namespace {
namespace fs = std::filesystem;
using namespace shallow::decoding;

struct TrainFlags {
  EegFlags eeg;
  std::string features_train, features_test, out;
  ModelSpec model;
  TrainOptions train;
  bool resume = false, quiet = false;
  int threads = 0;
};

void note_reordering(const Features& f, std::ostream& log) {
  if (f.reordered) log << "note: " << f.path << ": rows put in sorted image order, as the EEG's (from images.txt)\n";
}

int train(const TrainFlags& f, Streams& s) {
  if (f.threads > 0) set_num_threads(f.threads);
  check_output_dir(f.out);
  const fs::path out(f.out);
  const std::string checkpoint = (out / "checkpoint.safetensors").string();
  if (f.resume) SH_CHECK(fs::exists(checkpoint), "--resume: ", checkpoint, " does not exist");
  else SH_CHECK(!fs::exists(checkpoint), f.out, ": already holds a checkpoint; continue it with --resume or choose another --out");

  // Everything is read and checked before anything is written.
  const LoadedEeg eeg = load_eeg_source(f.eeg.resolved());
  const Features train_features = read_features(f.features_train, Split::train);
  const Features test_features = read_features(f.features_test, Split::test);
  check_feature_rows(train_features, eeg.data.train.images, eeg.data.train.sources.front());
  check_feature_rows(test_features, eeg.data.test.images, eeg.data.test.sources.front());
  SH_CHECK(train_features.x.size(1) == test_features.x.size(1), f.features_test, ": features of size ",
           test_features.x.size(1), " but ", f.features_train, " has ", train_features.x.size(1));

  ModelSpec spec = f.model;
  spec.channels = eeg.data.train.eeg.size(1);
  spec.times = eeg.data.train.eeg.size(2);
  spec.image_dim = train_features.x.size(1);
  spec.ch_names = eeg.data.train.ch_names;
  spec.zscore = eeg.data.zscore;
  TrainOptions t = f.train;
  t.checkpoint = checkpoint;
  t.resume = f.resume;
  t.progress = !f.quiet;
  t.run = eeg.run;
  t.run["features_train"] = f.features_train;
  t.run["features_test"] = f.features_test;

  DecodingModel probe(spec);  // an unknown encoder or an input too short for it fails here, before any file
  note_reordering(train_features, s.err);
  note_reordering(test_features, s.err);
  s.err << "data: " << eeg.run["dataset"].get<std::string>() << ", " << eeg.run["protocol"].get<std::string>() << "; "
        << eeg.data.train.eeg.size(0) << " training trials of " << spec.channels << " channels x " << spec.times
        << " times, " << eeg.data.test.images << " test images; features of size " << spec.image_dim << "\n";
  fs::create_directories(out);
  const TrainResult result = train_model({eeg.data.train.eeg, eeg.data.train.image, train_features.x}, spec, t, s.err);
  std::string log_text;
  for (const EpochLog& e : result.history) log_text += format_epoch(e, t.epochs) + "\n";
  write_text_file((out / "train.log").string(), log_text);
  if (!result.finished) {
    s.out << "stopped after epoch " << result.epochs_done << " of " << t.epochs << "; " << checkpoint
          << " holds the state: continue with --resume\n";
    return 0;
  }

  const Retrieval r = evaluate_retrieval(*result.model, eeg.data.test.eeg, eeg.data.test.image, test_features.x);
  nlohmann::json settings = {{"run", t.run}, {"model", result.model->spec().to_json()}, {"training", t.to_json()},
                             {"checkpoint", checkpoint}};
  write_json_file((out / "metrics.json").string(), metrics_json(r, settings));
  s.out << r.candidates << "-way zero-shot retrieval: top-1 " << r.top1 << ", top-5 " << r.top5 << " (chance "
        << 1.0 / double(r.candidates) << ")" << (eeg.data.test.simulated ? "  [SIMULATED data]" : "") << "\n"
        << "wrote " << (out / "metrics.json").string() << ", " << checkpoint << ", " << (out / "train.log").string()
        << "\n";
  s.out << "peak memory: " << human_bytes(memory_stats().peak_bytes) << "\n";
  return 0;
}

}  // namespace

void add_train(CLI::App& app, Action* action) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* sub = app.add_subcommand(
      "train", "Train an EEG encoder contrastively against one layer's image features, then evaluate 200-way "
               "zero-shot retrieval (OUT/metrics.json, OUT/checkpoint.safetensors, OUT/train.log)");
  add_eeg_flags(sub, f->eeg);
  sub->add_option("--features-train", f->features_train,
                  "the training images' features, [n_images, dim] .npy (rows matched through images.txt)")
      ->required();
  sub->add_option("--features-test", f->features_test, "the test images' features (may be the same file)")
      ->required();
  sub->add_option("--out", f->out, "the folder to write into")->required();
  add_model_flags(sub, f->model);
  add_train_flags(sub, f->train);
  sub->add_option("--seed", f->train.seed, "seeds the model, the batches and dropout")->capture_default_str();
  sub->add_flag("--resume", f->resume, "continue from OUT/checkpoint.safetensors with the same settings");
  sub->add_option("--stop-after", f->train.stop_after,
                  "stop once this epoch is done, keeping the checkpoint (continue later with --resume)");
  sub->add_option("--threads", f->threads, "compute threads (default: all)");
  sub->add_flag("--quiet", f->quiet, "no progress lines");
  sub->callback([f, action] { *action = [f](Streams& s) { return train(*f, s); }; });
}

}  // namespace shallow::cli
