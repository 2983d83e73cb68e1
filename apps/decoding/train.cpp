#include "apps/decoding/train.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <ostream>
#include <set>

#include "apps/decoding/evaluate.h"
#include "engine/autograd.h"
#include "engine/ops/indexing.h"
#include "engine/optim/adam.h"
#include "engine/optim/lr_schedule.h"
#include "engine/random.h"

namespace shallow::decoding {
using json = nlohmann::json;

json TrainOptions::to_json() const {
  return {{"epochs", epochs}, {"batch_size", batch_size},     {"lr", lr},
          {"weight_decay", weight_decay}, {"seed", seed},     {"cosine", cosine},
          {"val_fraction", val_fraction}, {"optimizer", "AdamW"}};
}

std::string format_epoch(const EpochLog& e, int64_t epochs) {
  char line[256];
  int n = std::snprintf(line, sizeof line, "epoch %3lld/%lld  loss %.4f  lr %.3g", (long long)e.epoch,
                        (long long)epochs, e.loss, e.lr);
  if (e.val_loss >= 0)
    n += std::snprintf(line + n, sizeof line - size_t(n), "  val_loss %.4f  val_top1 %.3f", e.val_loss, e.val_top1);
  std::snprintf(line + n, sizeof line - size_t(n), "  %.2f s", e.seconds);
  return line;
}

namespace {

// Which samples train and which validate: a seeded share of the images (never of the trials,
// so that no image is seen in both) is held out.
struct Split {
  std::vector<int64_t> train, val;  // sample indices
  std::vector<int64_t> val_images;  // the held-out images, in order
  std::vector<int64_t> val_truth;   // per val sample: its image's position in val_images
};

Split split_samples(const TrainData& data, double fraction, uint64_t seed) {
  Split s;
  const int64_t images = data.features.size(0);
  const int64_t n_val = int64_t(fraction * double(images) + 0.5);
  SH_CHECK(fraction >= 0.0 && fraction < 1.0 && (fraction == 0.0 || (n_val >= 2 && n_val < images)),
           "the validation share must leave at least 2 images on each side, got ", fraction, " of ", images,
           " images");
  std::vector<int64_t> position(size_t(images), -1);
  if (n_val > 0) {
    Generator g(seed ^ 0x5eedf00dULL);  // its own stream: the split does not move the main one
    const std::vector<int64_t> order = randperm(images, &g).to_vector<int64_t>();
    s.val_images.assign(order.begin(), order.begin() + n_val);
    std::sort(s.val_images.begin(), s.val_images.end());
    for (size_t i = 0; i < s.val_images.size(); ++i) position[size_t(s.val_images[i])] = int64_t(i);
  }
  for (int64_t i = 0; i < int64_t(data.image.size()); ++i) {
    const int64_t p = position[size_t(data.image[size_t(i)])];
    if (p < 0) {
      s.train.push_back(i);
    } else {
      s.val.push_back(i);
      s.val_truth.push_back(p);
    }
  }
  return s;
}

Tensor index_tensor(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

// The batches of one epoch: sizes of batch_size, the last smaller; a last batch of a single
// trial is dropped (InfoNCE needs a negative, batch norm two samples).
std::vector<std::pair<int64_t, int64_t>> batch_ranges(int64_t n, int64_t batch) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t end = std::min(n, start + batch);
    if (end - start >= 2) ranges.push_back({start, end});
  }
  return ranges;
}

void check_data(const TrainData& data, const ModelSpec& spec) {
  SH_CHECK(data.eeg.dim() == 3 && data.eeg.size(0) == int64_t(data.image.size()),
           "training: EEG of shape ", shape_str(data.eeg.shape()), " for ", data.image.size(), " image labels");
  SH_CHECK(data.features.dim() == 2, "training: features should be [images, dim], got ",
           shape_str(data.features.shape()));
  SH_CHECK(data.eeg.size(1) == spec.channels && data.eeg.size(2) == spec.times &&
               data.features.size(1) == spec.image_dim,
           "training: the model expects EEG [", spec.channels, ", ", spec.times, "] and features of size ",
           spec.image_dim, ", the data are ", shape_str(data.eeg.shape()), " and ",
           shape_str(data.features.shape()));
  for (int64_t i : data.image)
    SH_CHECK(i >= 0 && i < data.features.size(0), "training: a trial refers to image ", i, " of ",
             data.features.size(0));
}

// The validation loss (in batches as training has them) and top-1 among the held-out images.
std::pair<double, double> validate(DecodingModel& model, const TrainData& data, const Split& split,
                                   int64_t batch) {
  const Tensor eeg = index_select(data.eeg, 0, index_tensor(split.val));
  const Tensor val_features = index_select(data.features, 0, index_tensor(split.val_images));
  const Tensor pair_features = index_select(val_features, 0, index_tensor(split.val_truth));
  double loss_sum = 0;
  int64_t counted = 0;
  {
    NoGrad no_grad;
    model.eval();
    for (auto [start, end] : batch_ranges(eeg.size(0), batch)) {
      const double l = model.loss(eeg.slice(0, start, end), pair_features.slice(0, start, end)).item();
      loss_sum += l * double(end - start);
      counted += end - start;
    }
    model.train();
  }
  const Retrieval r = evaluate_retrieval(model, eeg, split.val_truth, val_features);
  return {counted > 0 ? loss_sum / double(counted) : 0.0, r.top1};
}

// Names the first difference between the options a checkpoint was made with and these.
void check_resumable(const Checkpoint& c, const ModelSpec& spec, const TrainOptions& o, const std::string& path) {
  const json now = o.to_json();
  for (auto& [key, value] : now.items())
    SH_CHECK(c.training.contains(key) && c.training.at(key) == value, path, ": was made with ", key, " = ",
             c.training.contains(key) ? c.training.at(key).dump() : std::string("(unset)"), ", this run has ",
             value.dump(), "; resume with the same settings");
  const json a = c.spec.to_json(), b = spec.to_json();
  for (auto& [key, value] : b.items())
    SH_CHECK(a.value(key, json()) == value, path, ": its model has ", key, " = ",
             a.value(key, json()).dump(), ", this run's has ", value.dump());
  SH_CHECK(c.epoch <= o.epochs, path, ": already trained ", c.epoch, " epochs, more than the ", o.epochs,
           " asked for");
}

}  // namespace

TrainResult train_model(const TrainData& data, const ModelSpec& spec, const TrainOptions& o, std::ostream& log) {
  SH_CHECK(o.epochs > 0 && o.batch_size > 0 && o.lr > 0 && o.weight_decay >= 0,
           "training: epochs, batch size and learning rate must be positive, got ", o.epochs, ", ",
           o.batch_size, ", ", o.lr);
  check_data(data, spec);
  const Split split = split_samples(data, o.val_fraction, o.seed);
  SH_CHECK(split.train.size() >= 2, "training: ", split.train.size(), " training trials; at least 2 are needed");

  manual_seed(o.seed);
  TrainResult result;
  result.model = std::make_shared<DecodingModel>(spec);
  DecodingModel& model = *result.model;
  optim::AdamWOptions adamw;
  adamw.lr = o.lr;
  adamw.weight_decay = o.weight_decay;
  optim::AdamW optimizer(model.parameters(), adamw);
  const int64_t n_train = int64_t(split.train.size());
  const int64_t steps_per_epoch = int64_t(batch_ranges(n_train, o.batch_size).size());
  std::unique_ptr<optim::CosineWithWarmup> schedule;
  if (o.cosine) schedule = std::make_unique<optim::CosineWithWarmup>(optimizer, 0, o.epochs * steps_per_epoch, 0.0);

  int64_t first_epoch = 1;
  if (o.resume) {
    SH_CHECK(!o.checkpoint.empty(), "--resume needs a checkpoint to resume from");
    const Checkpoint c = read_checkpoint(o.checkpoint);
    check_resumable(c, model.spec(), o, o.checkpoint);
    model.load_state_dict(c.model);
    optimizer.load_state_dict(c.optimizer);
    default_generator().manual_seed(c.rng_seed);
    default_generator().set_offset(c.rng_offset);
    if (schedule) schedule->set_step(c.epoch * steps_per_epoch);
    result.history = c.history;
    first_epoch = c.epoch + 1;
    if (o.progress) log << "resuming from " << o.checkpoint << " after epoch " << c.epoch << "\n";
  }
  result.epochs_done = first_epoch - 1;

  const Tensor train_index = index_tensor(split.train);
  model.train();
  for (int64_t epoch = first_epoch; epoch <= o.epochs; ++epoch) {
    const auto started = std::chrono::steady_clock::now();
    const Tensor order = index_select(train_index, 0, randperm(n_train));
    const std::vector<int64_t> samples = order.to_vector<int64_t>();
    EpochLog e;
    e.epoch = epoch;
    e.lr = optimizer.lr();
    double loss_sum = 0;
    int64_t counted = 0;
    for (auto [start, end] : batch_ranges(n_train, o.batch_size)) {
      std::vector<int64_t> images;
      for (int64_t i = start; i < end; ++i) images.push_back(data.image[size_t(samples[size_t(i)])]);
      const Tensor x = index_select(data.eeg, 0, order.slice(0, start, end));
      const Tensor f = index_select(data.features, 0, index_tensor(images));
      const Tensor loss = model.loss(x, f);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      if (schedule) schedule->step();
      loss_sum += loss.item() * double(end - start);
      counted += end - start;
    }
    e.loss = loss_sum / double(counted);
    if (!split.val.empty()) std::tie(e.val_loss, e.val_top1) = validate(model, data, split, o.batch_size);
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    result.history.push_back(e);
    result.epochs_done = epoch;
    if (o.progress) log << format_epoch(e, o.epochs) << std::endl;

    if (!o.checkpoint.empty()) {
      Checkpoint c;
      c.spec = model.spec();
      c.model = model.state_dict();
      c.optimizer = optimizer.state_dict();
      c.epoch = epoch;
      c.rng_seed = default_generator().seed();
      c.rng_offset = default_generator().offset();
      c.training = o.to_json();
      c.run = o.run;
      c.history = result.history;
      write_checkpoint(o.checkpoint, c);
    }
    if (o.stop_after > 0 && epoch >= o.stop_after && epoch < o.epochs) break;
  }
  result.finished = result.epochs_done == o.epochs;
  model.eval();
  return result;
}

}  // namespace shallow::decoding
