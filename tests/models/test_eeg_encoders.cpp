// The EEG encoders against their PyTorch definitions (tests/reference/eeg_models.py, fixture
// made by tests/reference/eeg_encoders.py): parameter names and shapes at the published sizes,
// outputs in eval and training mode, running statistics, gradients; and their errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/ops.h"
#include "models/eeg/encoder.h"
#include "tests/support/fixtures.h"
#include "tests/models/test_eeg_support.h"

namespace shallow::models {
namespace {

using testing::all_close;
using testing::Fixture;
using namespace testing::eeg;

// The seeds of tests/reference/eeg_encoders.py.
constexpr uint64_t kWeightSeed = 0x5EED, kInputSeed = 0x1A7A, kTrainInputSeed = 0x7A1A,
                   kOutputProbeSeed = 0x0B5E, kGradProbeSeed = 0x6AAD;
constexpr int64_t kEmbed = 16;

const Fixture& fixture() {
  static const Fixture f("eeg_encoders");
  return f;
}

nlohmann::json metadata_json(const std::string& key) {
  return nlohmann::json::parse(fixture().metadata().at(key));
}

struct Case {
  std::string encoder;
  EegShape shape;
  std::string key() const {
    return encoder + "." + std::to_string(shape.channels) + "x" + std::to_string(shape.times);
  }
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.key(); }

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const std::string& name : eeg_encoder_names())
    for (EegShape s : {EegShape{17, 100}, EegShape{63, 250}}) cases.push_back({name, s});
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.encoder + "_" + std::to_string(info.param.shape.channels) + "x" +
         std::to_string(info.param.shape.times);
}

std::shared_ptr<EegEncoder> deterministic_encoder(const Case& c) {
  auto model = make_eeg_encoder(c.encoder, c.shape, kEmbed);
  fill_deterministic(*model, kWeightSeed);
  return model;
}

class EegEncoderCase : public ::testing::TestWithParam<Case> {};

TEST_P(EegEncoderCase, StateDictNamesAndShapesMatchPyTorchAtPublishedSizes) {
  const Case& c = GetParam();
  auto model = make_eeg_encoder(c.encoder, c.shape);
  const nlohmann::json state_dicts = metadata_json("state_dicts");
  std::map<std::string, Shape> expected;
  for (const auto& entry : state_dicts.at(c.key()))
    expected[entry.at(0).get<std::string>()] = entry.at(1).get<Shape>();
  std::map<std::string, Shape> actual;
  for (const auto& [name, t] : model->state_dict()) actual[name] = t.shape();
  EXPECT_EQ(actual, expected);
}

TEST_P(EegEncoderCase, OutputShapeAtDefaultEmbedDim) {
  const Case& c = GetParam();
  auto model = make_eeg_encoder(c.encoder, c.shape);
  model->eval();
  NoGrad no_grad;
  const Tensor y = model->forward(randn({3, c.shape.channels, c.shape.times}));
  EXPECT_EQ(y.shape(), (Shape{3, model->embed_dim()}));
}

TEST_P(EegEncoderCase, EvalOutputMatchesPyTorch) {
  const Case& c = GetParam();
  auto model = deterministic_encoder(c);
  model->eval();
  NoGrad no_grad;
  const Tensor x = deterministic_tensor(kInputSeed, {2, c.shape.channels, c.shape.times});
  EXPECT_TRUE(all_close(model->forward(x), fixture().get(c.key() + ".eval_output"), 1e-4, 1e-4));
}

// Training mode with dropout off: batch norm normalizes with batch statistics and updates its
// running means.
TEST_P(EegEncoderCase, TrainingOutputAndRunningStatisticsMatchPyTorch) {
  const Case& c = GetParam();
  auto model = deterministic_encoder(c);
  model->train();
  dropout_off(*model);
  const Tensor x = deterministic_tensor(kTrainInputSeed, {4, c.shape.channels, c.shape.times});
  EXPECT_TRUE(all_close(model->forward(x), fixture().get(c.key() + ".train_output"), 1e-4, 1e-4));
  for (const auto& [name, b] : model->named_buffers()) {
    const std::string key = c.key() + ".running_mean." + name;
    if (fixture().has(key)) EXPECT_TRUE(all_close(b, fixture().get(key), 1e-5, 1e-4)) << name;
  }
}

// The input given as a transposed view must give what the contiguous input gives.
TEST_P(EegEncoderCase, NonContiguousInputGivesTheSameOutput) {
  const Case& c = GetParam();
  auto model = deterministic_encoder(c);
  model->eval();
  NoGrad no_grad;
  const Tensor x = deterministic_tensor(kInputSeed, {2, c.shape.channels, c.shape.times});
  const Tensor x_t = x.transpose(1, 2).contiguous().transpose(1, 2);
  ASSERT_FALSE(x_t.is_contiguous());
  EXPECT_TRUE(all_close(model->forward(x_t), model->forward(x), 0.0, 0.0));
}

TEST_P(EegEncoderCase, RejectsInputsOfTheWrongShape) {
  const Case& c = GetParam();
  auto model = make_eeg_encoder(c.encoder, c.shape, kEmbed);
  const int64_t C = c.shape.channels, T = c.shape.times;
  for (const Shape& bad : {Shape{2, C + 1, T}, Shape{2, C, T - 1}, Shape{C, T}, Shape{2, 1, C, T}}) {
    try {
      model->forward(Tensor::zeros(bad));
      ADD_FAILURE() << c.encoder << " accepted " << shape_str(bad);
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(shape_str(bad)), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::to_string(C) + ", " + std::to_string(T)), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(model->forward(Tensor::zeros({2, C, T}, DType::i64)), Error);
}

// With dropout active, two training forwards differ (dropout is wired in) while eval is fixed.
TEST_P(EegEncoderCase, DropoutActsOnlyInTraining) {
  const Case& c = GetParam();
  if (c.shape.channels != 17) GTEST_SKIP() << "one size is enough";
  auto model = deterministic_encoder(c);
  const Tensor x = deterministic_tensor(kTrainInputSeed, {4, c.shape.channels, c.shape.times});
  NoGrad no_grad;
  model->train();
  const Tensor a = model->forward(x), b = model->forward(x);
  EXPECT_FALSE(all_close(a, b, 1e-6, 0.0));
  model->eval();
  EXPECT_TRUE(all_close(model->forward(x), model->forward(x), 0.0, 0.0));
}

INSTANTIATE_TEST_SUITE_P(EegEncoders, EegEncoderCase, ::testing::ValuesIn(all_cases()), case_name);

// Gradients of sum(y * r), each parameter's (and the input's) summed against a deterministic
// probe. The tolerance is relative to the gradient's norm, plus a floor for the parameters whose
// gradient is zero in exact arithmetic (a bias or scale that a batch norm removes), which hold
// rounding noise only.
class EegEncoderGradients : public ::testing::TestWithParam<std::string> {};

TEST_P(EegEncoderGradients, MatchPyTorch) {
  const Case c{GetParam(), {17, 100}};
  auto model = deterministic_encoder(c);
  model->train();
  dropout_off(*model);
  Tensor x = deterministic_tensor(kTrainInputSeed, {4, 17, 100}).set_requires_grad(true);
  const Tensor y = model->forward(x);
  sum(y * deterministic_tensor(kOutputProbeSeed, y.shape())).backward();

  const auto names = metadata_json("grad_probe_names").at(c.key()).get<std::vector<std::string>>();
  const std::vector<double> expected = fixture().get(c.key() + ".grad_probe").to_vector<double>();
  const std::vector<double> norms = fixture().get(c.key() + ".grad_l2").to_vector<double>();
  ASSERT_EQ(names.size(), expected.size());
  EXPECT_EQ(names.size(), model->named_parameters().size() + 1);
  const double largest = *std::max_element(norms.begin(), norms.end());
  for (size_t i = 0; i < names.size(); ++i) {
    const Tensor g = names[i] == "input" ? x.grad() : model->parameter(names[i]).grad();
    ASSERT_TRUE(g.defined()) << names[i];
    const Tensor probe = deterministic_tensor(kGradProbeSeed ^ fnv1a64(names[i]), g.shape());
    const double actual = sum(g.to(DType::f64) * probe.to(DType::f64)).item();
    EXPECT_NEAR(actual, expected[i], 1e-3 * norms[i] + 1e-5 * largest) << names[i];
  }
}

INSTANTIATE_TEST_SUITE_P(EegEncoders, EegEncoderGradients,
                         ::testing::ValuesIn(eeg_encoder_names()),
                         [](const auto& info) { return info.param; });

TEST(EegEncoderRegistry, NamesAndPublishedDefaults) {
  EXPECT_EQ(eeg_encoder_names(),
            (std::vector<std::string>{"eegproject", "tsconv", "atms", "eegnet", "shallownet"}));
  const std::map<std::string, int64_t> defaults = {
      {"eegproject", 1024}, {"tsconv", 768}, {"atms", 1024}, {"eegnet", 1024}, {"shallownet", 1024}};
  for (const auto& [name, dim] : defaults)
    EXPECT_EQ(make_eeg_encoder(name, {17, 100})->embed_dim(), dim) << name;
  EXPECT_EQ(make_eeg_encoder("tsconv", {17, 100}, 32)->embed_dim(), 32);
}

TEST(EegEncoderRegistry, UnknownNameListsTheKnownOnes) {
  try {
    make_eeg_encoder("eegformer", {17, 100});
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("eegformer"), std::string::npos) << msg;
    for (const std::string& name : eeg_encoder_names())
      EXPECT_NE(msg.find(name), std::string::npos) << msg;
  }
  EXPECT_THROW(make_eeg_encoder("eegproject", {17, 100}, -1), Error);
}

TEST(EegEncoderRegistry, RejectsSizesTheLayersCannotTake) {
  EXPECT_THROW(make_eeg_encoder("eegproject", {0, 100}), Error);
  EXPECT_THROW(make_eeg_encoder("eegnet", {17, -5}), Error);
  // The TSConv stem needs 24 + 51 time points, ShallowNet 24 + 75, EEGNet 27.
  EXPECT_NO_THROW(make_eeg_encoder("tsconv", {17, 75}, 8));
  EXPECT_THROW(make_eeg_encoder("tsconv", {17, 74}, 8), Error);
  EXPECT_THROW(make_eeg_encoder("atms", {17, 74}, 8), Error);
  EXPECT_NO_THROW(make_eeg_encoder("shallownet", {17, 99}, 8));
  EXPECT_THROW(make_eeg_encoder("shallownet", {17, 98}, 8), Error);
  EXPECT_NO_THROW(make_eeg_encoder("eegnet", {17, 27}, 8));
  EXPECT_THROW(make_eeg_encoder("eegnet", {17, 26}, 8), Error);
  try {
    make_eeg_encoder("tsconv", {17, 50});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("50"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace shallow::models
