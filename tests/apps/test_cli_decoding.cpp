// `shallow train`, `eval`, `sweep` and `demo` on the command line, run in-process on the small
// THINGS-EEG2 fixtures: the files they write, resuming, the protocols, and the user's mistakes,
// each a clear "error: ..." with exit code 2 and nothing written.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apps/shallow/commands.h"
#include "engine/ops.h"
#include "tests/support/fixtures.h"
#include "weights_import/numpy.h"
#include "weights_import/safetensors.h"

using namespace shallow;
using shallow::testing::fixture_path;
namespace fs = std::filesystem;

namespace {

struct CliRun {
  int code;
  std::string out, err;
};

CliRun shallow_cli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = cli::run(args, out, err);
  return {code, out.str(), err.str()};
}

std::string things(const std::string& relative) { return fixture_path("things/" + relative); }
const std::string kTrain = "study17/sub-01/preprocessed_eeg_training.npy";
const std::string kTest = "study17/sub-01/preprocessed_eeg_test.npy";

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

class DecodingCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shallow_test_cli_decoding_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    // Features of the fixture's 3 training and 2 test images, for three layers.
    Generator g(5);
    for (const char* layer : {"layer_0.npy", "layer_1.npy", "layer_final.npy"}) {
      fs::create_directories(dir_ / "features/train");
      fs::create_directories(dir_ / "features/test");
      write_npy(path("features/train/") + layer, randn({3, 8}, DType::f32, &g));
      write_npy(path("features/test/") + layer, randn({2, 8}, DType::f32, &g));
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& p) const { return (dir_ / p).string(); }
  std::vector<std::string> train_args(const std::string& out, std::vector<std::string> more = {}) const {
    std::vector<std::string> args = {"train",        "--eeg-train",        things(kTrain),
                                     "--eeg-test",   things(kTest),        "--features-train",
                                     path("features/train/layer_1.npy"), "--features-test",
                                     path("features/test/layer_1.npy"),  "--out",
                                     path(out),      "--embed-dim",        "16",
                                     "--shared-dim", "8",                  "--epochs",
                                     "3",            "--batch",            "4",
                                     "--lr",         "1e-3",               "--quiet"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  // Exit code 2, an "error: ..." line containing every part, and `out` never made.
  void expect_user_error(const std::vector<std::string>& args, const std::vector<std::string>& parts,
                         const std::string& out) {
    const CliRun r = shallow_cli(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(r.err.rfind("error: ", 0) == 0 || r.err.find("\nerror: ") != std::string::npos) << r.err;
    for (const std::string& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << "'" << p << "' in " << r.err;
    EXPECT_FALSE(fs::exists(path(out))) << out << " was written";
  }

  fs::path dir_;
};

}  // namespace

TEST_F(DecodingCli, TrainWritesMetricsCheckpointAndLog) {
  const CliRun r = shallow_cli(train_args("run"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("2-way zero-shot retrieval: top-1 "), std::string::npos) << r.out;
  for (const char* f : {"run/metrics.json", "run/checkpoint.safetensors", "run/train.log"})
    EXPECT_TRUE(fs::exists(path(f))) << f;
  const nlohmann::json m = read_json(path("run/metrics.json"));
  EXPECT_GE(m.at("top1").get<double>(), 0.0);
  EXPECT_LE(m.at("top1").get<double>(), 1.0);
  EXPECT_EQ(m.at("top5"), 1.0);  // 2 candidates
  EXPECT_EQ(m.at("candidates"), 2);
  EXPECT_EQ(m.at("settings").at("run").at("dataset"), "recorded EEG (THINGS-EEG2 format)");
  EXPECT_EQ(m.at("settings").at("run").at("protocol"), "one training file");
  EXPECT_EQ(m.at("settings").at("training").at("epochs"), 3);
  EXPECT_EQ(m.at("settings").at("model").at("channels"), 17);
  std::ifstream log(path("run/train.log"));
  std::string first;
  std::getline(log, first);
  EXPECT_EQ(first.rfind("epoch   1/3  loss ", 0), 0u) << first;

  // The same --out again is refused rather than overwritten.
  const CliRun again = shallow_cli(train_args("run"));
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.err.find("already holds a checkpoint"), std::string::npos) << again.err;
}

TEST_F(DecodingCli, ResumeEndsWithTheSameNumbers) {
  // Each repetition its own sample, and 2 of the 3 images held out for validation.
  const std::vector<std::string> more = {"--keep-repetitions", "--val-split", "0.5"};
  ASSERT_EQ(shallow_cli(train_args("whole", more)).code, 0);
  std::vector<std::string> stop = more;
  stop.insert(stop.end(), {"--stop-after", "1"});
  const CliRun first = shallow_cli(train_args("parts", stop));
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.out.find("stopped after epoch 1 of 3"), std::string::npos) << first.out;
  EXPECT_FALSE(fs::exists(path("parts/metrics.json")));
  std::vector<std::string> resume = more;
  resume.push_back("--resume");
  const CliRun rest = shallow_cli(train_args("parts", resume));
  ASSERT_EQ(rest.code, 0) << rest.err;

  const nlohmann::json a = read_json(path("whole/metrics.json")), b = read_json(path("parts/metrics.json"));
  EXPECT_EQ(a.at("top1"), b.at("top1"));
  const SafetensorsFile ca = read_safetensors(path("whole/checkpoint.safetensors"));
  const SafetensorsFile cb = read_safetensors(path("parts/checkpoint.safetensors"));
  ASSERT_EQ(ca.tensors.size(), cb.tensors.size());
  for (auto& [name, t] : ca.tensors)
    EXPECT_EQ(t.to(DType::f64).to_vector<double>(), cb.tensors.at(name).to(DType::f64).to_vector<double>()) << name;

  // Other settings than the checkpoint's are refused.
  resume.insert(resume.end(), {"--lr", "0.01"});
  const CliRun other = shallow_cli(train_args("parts", resume));
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.err.find("lr"), std::string::npos) << other.err;
}

TEST_F(DecodingCli, EvalMatchesTrain) {
  ASSERT_EQ(shallow_cli(train_args("run")).code, 0);
  const CliRun r = shallow_cli({"eval", "--checkpoint", path("run"), "--eeg-test", things(kTest), "--features-test",
                                path("features/test/layer_1.npy"), "--out", path("eval")});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json trained = read_json(path("run/metrics.json")), evaluated = read_json(path("eval/metrics.json"));
  EXPECT_EQ(trained.at("top1"), evaluated.at("top1"));
  EXPECT_EQ(evaluated.at("settings").at("trained_epochs"), 3);

}

TEST_F(DecodingCli, InterSubjectProtocol) {
  std::vector<std::string> args = train_args("inter");
  args[1] = "--things";
  args[2] = things("study17");
  args[3] = "--subject";
  args[4] = "2";
  args.push_back("--inter-subject");
  const CliRun r = shallow_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json m = read_json(path("inter/metrics.json"));
  EXPECT_EQ(m.at("settings").at("run").at("protocol"), "inter-subject, test sub-02, train sub-01 sub-03");
  EXPECT_EQ(m.at("settings").at("run").at("train_samples"), 6);
}

TEST_F(DecodingCli, BadInputIsAClearErrorWithNothingWritten) {
  // EEG and feature counts that disagree.
  write_npy(path("four.npy"), Tensor::ones({4, 8}));
  std::vector<std::string> args = train_args("out");
  args[6] = path("four.npy");
  expect_user_error(args, {"four.npy", "has 4 images", "has 3"}, "out");
  // A missing key in the EEG dict; NaN in the EEG and in the features.
  args = train_args("out");
  args[2] = things("bad/missing_key.npy");
  expect_user_error(args, {"missing_key.npy", "no key 'preprocessed_eeg_data'"}, "out");
  args = train_args("out");
  args[4] = things("bad/nan.npy");
  expect_user_error(args, {"nan.npy", "NaN"}, "out");
  write_npy(path("nan.npy"), Tensor::full({3, 8}, NAN));
  args = train_args("out");
  args[6] = path("nan.npy");
  expect_user_error(args, {"nan.npy", "NaN"}, "out");
  // An unknown encoder; EEG given twice over.
  expect_user_error(train_args("out", {"--encoder", "lstm"}), {"unknown EEG encoder 'lstm'", "eegproject"}, "out");
  expect_user_error(train_args("out", {"--things", things("study17"), "--subject", "1"}), {"not both"}, "out");
  // An output "folder" that is a file.
  write_npy(path("file"), Tensor::ones({1}));
  const CliRun r = shallow_cli(train_args("file"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("exists and is not a folder"), std::string::npos) << r.err;
}

TEST_F(DecodingCli, WrongChannelCountForACheckpoint) {
  ASSERT_EQ(shallow_cli(train_args("run")).code, 0);
  write_npy(path("five_channels.npy"), Tensor::ones({2, 3, 5, 100}));
  expect_user_error({"eval", "--checkpoint", path("run"), "--eeg-test", path("five_channels.npy"), "--features-test",
                     path("features/test/layer_1.npy"), "--out", path("eval")},
                    {"five_channels.npy", "has 5 channels but the model was trained on 17", "Pz, P3"}, "eval");
  write_npy(path("wide.npy"), Tensor::ones({2, 9}));
  expect_user_error({"eval", "--checkpoint", path("run"), "--eeg-test", things(kTest), "--features-test",
                     path("wide.npy"), "--out", path("eval")},
                    {"wide.npy", "[2, 9]", "size 8"}, "eval");
}

TEST_F(DecodingCli, SweepWritesTheTableAndThePlot) {
  const CliRun r = shallow_cli({"sweep", "--eeg-train", things(kTrain), "--eeg-test", things(kTest), "--features",
                                path("features"), "--out", path("sweep"), "--seeds", "2", "--embed-dim", "16",
                                "--shared-dim", "8", "--epochs", "2", "--batch", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("best layer: "), std::string::npos) << r.out;
  std::ifstream csv(path("sweep/sweep.csv"));
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(csv, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "layer,depth,dim,top1_mean,top1_std,top5_mean,top5_std,seeds");
  EXPECT_EQ(lines[1].rfind("0,0.0000,8,", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("1,1.0000,8,", 0), 0u) << lines[2];
  EXPECT_EQ(lines[3].rfind("final,1.0000,8,", 0), 0u) << lines[3];
  EXPECT_EQ(lines[3].substr(lines[3].size() - 2), ",2");
  std::ifstream svg_in(path("sweep/sweep.svg"));
  const std::string svg((std::istreambuf_iterator<char>(svg_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find(">final<"), std::string::npos);
  EXPECT_TRUE(fs::exists(path("sweep/runs/layer_final/seed_1/metrics.json")));

  // A layer file whose rows disagree with the EEG stops the sweep before any training.
  write_npy(path("features/test/layer_1.npy"), Tensor::ones({3, 8}));
  expect_user_error({"sweep", "--eeg-train", things(kTrain), "--eeg-test", things(kTest), "--features",
                     path("features"), "--out", path("sweep2")},
                    {"layer_1.npy", "has 3 images", "has 2"}, "sweep2");
}

TEST_F(DecodingCli, SweepExtractsFirstFromATHINGSImageFolder) {
  // The fixture's 3 training and 2 test images, as THINGS lays them out; extracted into one file
  // per layer whose images.txt covers both folders, each split then taking its own rows.
  const std::vector<std::pair<std::string, std::string>> images = {
      {"images/training_images/00002_b/b.png", "images/coffee.png"},
      {"images/training_images/00001_a/a1.jpg", "images/chelsea_small.jpg"},
      {"images/training_images/00001_a/a2.png", "images/horse.png"},
      {"images/test_images/00001_t/t.png", "images/astronaut_small.png"},
      {"images/test_images/00002_u/u.png", "images/camera_gray.png"}};
  for (auto& [to, from] : images) {
    fs::create_directories(fs::path(path(to)).parent_path());
    fs::copy_file(fixture_path(from), path(to));
  }
  const CliRun r = shallow_cli({"sweep", "--eeg-train", things(kTrain), "--eeg-test", things(kTest), "--weights",
                                fixture_path("models/hf_clip/model.safetensors"), "--images", path("images"),
                                "--layers", "1,final", "--out", path("sweep"), "--seeds", "1", "--embed-dim", "16",
                                "--shared-dim", "8", "--epochs", "1", "--batch", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy_array(path("sweep/features/layer_1.npy")).shape(), (Shape{5, 16}));
  std::ifstream csv(path("sweep/sweep.csv"));
  std::string header, first, second;
  std::getline(csv, header);
  std::getline(csv, first);
  std::getline(csv, second);
  EXPECT_EQ(first.rfind("1,1.0000,16,", 0), 0u) << first;
  EXPECT_EQ(second.rfind("final,1.0000,12,", 0), 0u) << second;
}

TEST_F(DecodingCli, DemoIsListed) {
  const CliRun r = shallow_cli({"demo", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--quick"), std::string::npos) << r.out;
  expect_user_error({"demo", "--seeds", "0,x", "--out", path("demo")}, {"--seeds", "'x'"}, "demo");
}
