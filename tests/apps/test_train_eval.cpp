// Retrieval metrics on hand-made cases; training (determinism, validation, schedule) on a small
// learnable set; checkpoints, and a resumed run that ends with exactly the numbers of one that
// never stopped.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>

#include "apps/decoding/checkpoint.h"
#include "apps/decoding/evaluate.h"
#include "apps/decoding/train.h"
#include "engine/ops.h"
#include "tests/support/errors.h"
#include "tests/support/scratch_dir.h"

using namespace shallow;
using shallow::testing::ScratchDir;
using shallow::testing::throws_error;
using namespace shallow::decoding;
namespace fs = std::filesystem;

namespace {

Tensor matrix(const std::vector<float>& v, int64_t rows) {
  return Tensor::from_vector(v, {rows, int64_t(v.size()) / rows});
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())) == 0;
}

// 24 images, each seen in two noisy trials; the features are a fixed linear map of the trials'
// clean signal, so that a model can learn to retrieve.
struct SmallSet {
  TrainData data;
  ModelSpec spec;
};

SmallSet small_set() {
  Generator g(42);
  const int64_t images = 24, C = 3, T = 8, dim = 6;
  const Tensor clean = randn({images, C, T}, DType::f32, &g);
  const Tensor map = randn({C * T, dim}, DType::f32, &g);
  SmallSet s;
  s.data.features = matmul(clean.reshape({images, C * T}), map).contiguous();
  std::vector<Tensor> trials;
  for (int rep = 0; rep < 2; ++rep) trials.push_back(add(clean, mul(randn({images, C, T}, DType::f32, &g), 0.3)));
  s.data.eeg = concat(trials, 0).contiguous();
  for (int rep = 0; rep < 2; ++rep)
    for (int64_t i = 0; i < images; ++i) s.data.image.push_back(i);
  s.spec.encoder = "eegproject";
  s.spec.embed_dim = 16;
  s.spec.shared_dim = 8;
  s.spec.channels = C;
  s.spec.times = T;
  s.spec.image_dim = dim;
  s.spec.ch_names = {"a", "b", "c"};
  return s;
}

TrainOptions small_options() {
  TrainOptions o;
  o.epochs = 4;
  o.batch_size = 16;
  o.lr = 3e-3;
  o.seed = 7;
  o.progress = false;
  return o;
}

}  // namespace

// ---- retrieval

TEST(Retrieval, HandMadeRanks) {
  // Query 0: right answer best. Query 1: one candidate above it. Query 2: five above it.
  const Tensor s = matrix({0.9f, 0.1f, 0.2f, 0.0f, 0.0f, 0.0f, 0.0f,   //
                           0.8f, 0.5f, 0.1f, 0.0f, 0.0f, 0.0f, 0.0f,   //
                           0.6f, 0.6f, 0.1f, 0.7f, 0.8f, 0.9f, 0.65f}, 3);
  const Retrieval r = retrieval_metrics(s, {0, 1, 2});
  EXPECT_EQ(r.ranks, (std::vector<int64_t>{0, 1, 6}));
  EXPECT_DOUBLE_EQ(r.top1, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.top5, 2.0 / 3.0);
  EXPECT_EQ(r.queries, 3);
  EXPECT_EQ(r.candidates, 7);
}

TEST(Retrieval, TiesCountAgainstTheQuery) {
  const Tensor same = Tensor::full({4, 4}, 0.5);
  const Retrieval r = retrieval_metrics(same, {0, 1, 2, 3});
  EXPECT_EQ(r.top1, 0.0);  // a constant model is no better than chance
  EXPECT_EQ(r.top5, 1.0);  // 4 candidates: all within the top 5
  const Retrieval ident = retrieval_metrics(matrix({1, 0, 0, 1}, 2), {0, 1});
  EXPECT_EQ(ident.top1, 1.0);
  const Retrieval swapped = retrieval_metrics(matrix({1, 0, 0, 1}, 2), {1, 0});
  EXPECT_EQ(swapped.top1, 0.0);
  EXPECT_EQ(swapped.ranks, (std::vector<int64_t>{1, 1}));
}

TEST(Retrieval, BadInput) {
  EXPECT_TRUE(throws_error([] { retrieval_metrics(Tensor::zeros({3}), {0, 1, 2}); }, {"[queries, candidates]", "[3]"}));
  EXPECT_TRUE(throws_error([] { retrieval_metrics(Tensor::zeros({2, 3}), {0}); }, {"1 answers for 2 queries"}));
  EXPECT_TRUE(throws_error([] { retrieval_metrics(Tensor::zeros({1, 3}), {3}); }, {"candidate 3 of 3"}));
}

TEST(Retrieval, MetricsJsonHoldsFractionsAndSettings) {
  const Retrieval r = retrieval_metrics(matrix({1, 0, 0, 1}, 2), {0, 1});
  const nlohmann::json j = metrics_json(r, {{"encoder", "eegproject"}});
  EXPECT_EQ(j.at("top1"), 1.0);
  EXPECT_EQ(j.at("candidates"), 2);
  EXPECT_EQ(j.at("chance_top1"), 0.5);
  EXPECT_EQ(j.at("settings").at("encoder"), "eegproject");
}

// ---- training

TEST(Training, LearnsAndIsDeterministic) {
  const SmallSet s = small_set();
  TrainOptions o = small_options();
  o.epochs = 12;
  std::ostringstream log;
  const TrainResult a = train_model(s.data, s.spec, o, log);
  ASSERT_EQ(a.history.size(), 12u);
  EXPECT_TRUE(a.finished);
  EXPECT_LT(a.history.back().loss, 0.7 * a.history.front().loss);
  // Retrieval of the training images from their first trials is far above chance (1/24).
  const std::vector<int64_t> first(s.data.image.begin(), s.data.image.begin() + 24);
  const Retrieval r = evaluate_retrieval(*a.model, s.data.eeg.slice(0, 0, 24), first, s.data.features);
  EXPECT_GT(r.top1, 0.3);

  const TrainResult b = train_model(s.data, s.spec, o, log);
  for (size_t e = 0; e < a.history.size(); ++e) EXPECT_EQ(a.history[e].loss, b.history[e].loss) << e;
  o.seed = 8;
  const TrainResult c = train_model(s.data, s.spec, o, log);
  EXPECT_NE(a.history.back().loss, c.history.back().loss);
}

TEST(Training, ProgressLinesAndValidation) {
  const SmallSet s = small_set();
  TrainOptions o = small_options();
  o.progress = true;
  o.val_fraction = 0.25;  // 6 of the 24 images, with both their trials
  std::ostringstream log;
  const TrainResult r = train_model(s.data, s.spec, o, log);
  ASSERT_EQ(r.history.size(), 4u);
  for (const EpochLog& e : r.history) {
    EXPECT_GE(e.val_loss, 0.0);
    EXPECT_GE(e.val_top1, 0.0);
    EXPECT_LE(e.val_top1, 1.0);
  }
  const std::string text = log.str();
  EXPECT_NE(text.find("epoch   1/4  loss "), std::string::npos) << text;
  EXPECT_NE(text.find("val_top1"), std::string::npos) << text;
  EXPECT_NE(text.find(" s\n"), std::string::npos) << text;
  o.val_fraction = 0.99;
  EXPECT_TRUE(throws_error([&] { train_model(s.data, s.spec, o, log); }, {"validation share"}));
}

TEST(Training, CosineScheduleDecays) {
  const SmallSet s = small_set();
  TrainOptions o = small_options();
  o.cosine = true;
  std::ostringstream log;
  const TrainResult r = train_model(s.data, s.spec, o, log);
  EXPECT_DOUBLE_EQ(r.history[0].lr, o.lr);
  for (size_t e = 1; e < r.history.size(); ++e) EXPECT_LT(r.history[e].lr, r.history[e - 1].lr);
}

TEST(Training, DataThatDoNotFitTheModel) {
  SmallSet s = small_set();
  std::ostringstream log;
  ModelSpec spec = s.spec;
  spec.channels = 4;
  EXPECT_TRUE(throws_error([&] { train_model(s.data, spec, small_options(), log); }, {"[4, 8]", "[48, 3, 8]"}));
  s.data.image[5] = 24;
  EXPECT_TRUE(throws_error([&] { train_model(s.data, s.spec, small_options(), log); }, {"image 24 of 24"}));
}

// ---- checkpoints and resuming

TEST(Checkpoint, RoundTrip) {
  ScratchDir dir;
  SmallSet s = small_set();
  s.spec.zscore = {{1.0f, 2.0f, 3.0f}, {0.5f, 0.25f, 2.0f}};
  TrainOptions o = small_options();
  o.epochs = 2;
  o.checkpoint = dir.file("ckpt.safetensors");
  o.run = {{"dataset", "test"}};
  std::ostringstream log;
  const TrainResult r = train_model(s.data, s.spec, o, log);
  const Checkpoint c = read_checkpoint(o.checkpoint);
  EXPECT_EQ(c.epoch, 2);
  EXPECT_EQ(c.spec.encoder, "eegproject");
  EXPECT_EQ(c.spec.embed_dim, 16);
  EXPECT_EQ(c.spec.ch_names, s.spec.ch_names);
  EXPECT_EQ(c.spec.zscore.std, s.spec.zscore.std);
  EXPECT_EQ(c.run.at("dataset"), "test");
  ASSERT_EQ(c.history.size(), 2u);
  EXPECT_EQ(c.history[1].loss, r.history[1].loss);
  for (auto& [name, t] : r.model->state_dict()) EXPECT_TRUE(bit_equal(c.model.at(name), t)) << name;
  EXPECT_FALSE(c.optimizer.empty());
  EXPECT_EQ(checkpoint_file(dir.file("")), dir.file("checkpoint.safetensors"));
  EXPECT_TRUE(throws_error([&] { read_checkpoint(dir.file("none.safetensors")); }, {"none.safetensors", "no such checkpoint"}));
}

TEST(Checkpoint, ResumedRunEndsWithTheSameNumbers) {
  ScratchDir dir;
  const SmallSet s = small_set();
  std::ostringstream log;
  for (bool cosine : {false, true}) {
    TrainOptions o = small_options();
    o.epochs = 5;
    o.cosine = cosine;
    o.val_fraction = 0.25;
    o.checkpoint = dir.file(cosine ? "whole_cos.safetensors" : "whole.safetensors");
    const TrainResult whole = train_model(s.data, s.spec, o, log);

    o.checkpoint = dir.file(cosine ? "parts_cos.safetensors" : "parts.safetensors");
    o.stop_after = 2;
    const TrainResult first = train_model(s.data, s.spec, o, log);
    EXPECT_FALSE(first.finished);
    EXPECT_EQ(first.epochs_done, 2);
    manual_seed(12345);  // whatever happened in between: the checkpoint restores the generator
    o.stop_after = 0;
    o.resume = true;
    const TrainResult rest = train_model(s.data, s.spec, o, log);
    EXPECT_TRUE(rest.finished);
    ASSERT_EQ(rest.history.size(), whole.history.size());
    for (size_t e = 0; e < whole.history.size(); ++e) {
      EXPECT_EQ(rest.history[e].loss, whole.history[e].loss) << "epoch " << e + 1 << " cosine " << cosine;
      EXPECT_EQ(rest.history[e].val_top1, whole.history[e].val_top1) << e;
      EXPECT_EQ(rest.history[e].lr, whole.history[e].lr) << e;
    }
    const nn::StateDict a = whole.model->state_dict(), b = rest.model->state_dict();
    for (auto& [name, t] : a) EXPECT_TRUE(bit_equal(b.at(name), t)) << name;
    const Checkpoint ca = read_checkpoint(dir.file(cosine ? "whole_cos.safetensors" : "whole.safetensors"));
    const Checkpoint cb = read_checkpoint(o.checkpoint);
    for (auto& [name, t] : ca.optimizer) EXPECT_TRUE(bit_equal(cb.optimizer.at(name), t)) << name;
    EXPECT_EQ(ca.rng_offset, cb.rng_offset);
  }
}

TEST(Checkpoint, ResumingWithOtherSettingsIsRefused) {
  ScratchDir dir;
  const SmallSet s = small_set();
  std::ostringstream log;
  TrainOptions o = small_options();
  o.checkpoint = dir.file("c.safetensors");
  o.stop_after = 1;
  train_model(s.data, s.spec, o, log);
  o.resume = true;
  o.lr = 1e-2;
  EXPECT_TRUE(throws_error([&] { train_model(s.data, s.spec, o, log); }, {"c.safetensors", "lr", "same settings"}));
  o.lr = small_options().lr;
  ModelSpec other = s.spec;
  other.shared_dim = 4;
  EXPECT_TRUE(throws_error([&] { train_model(s.data, other, o, log); }, {"shared_dim"}));
  o.checkpoint = dir.file("absent.safetensors");
  EXPECT_TRUE(throws_error([&] { train_model(s.data, s.spec, o, log); }, {"absent.safetensors"}));
}
