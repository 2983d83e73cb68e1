// `shallow extract` on the command line, run in-process: the files it writes, its report, and
// the user's mistakes, each a clear "error: ..." and exit code 2 with nothing written.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "apps/shallow/commands.h"
#include "engine/threads.h"
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

CliRun shallow_cli(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int code = cli::run(args, out, err);
  return {code, out.str(), err.str()};
}

class ExtractCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shallow_test_extract_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "images/a");
    fs::create_directories(dir_ / "images/b");
    fs::copy_file(fixture_path("images/horse.png"), dir_ / "images/b/horse.png");
    fs::copy_file(fixture_path("images/chelsea_small.jpg"), dir_ / "images/a/cat.jpg");
    fs::copy_file(fixture_path("images/coffee.png"), dir_ / "images/a/coffee.png");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& p) const { return (dir_ / p).string(); }
  std::vector<std::string> extract(std::vector<std::string> more) const {
    std::vector<std::string> args = {"extract", "--weights",
                                     fixture_path("models/hf_clip/model.safetensors"), "--images",
                                     path("images"), "--out", path("out")};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  bool out_is_empty() const { return !fs::exists(dir_ / "out") || fs::is_empty(dir_ / "out"); }

  // Exit code 2, one "error: ..." line containing `what`, and no file written.
  void expect_user_error(const std::vector<std::string>& args, const std::string& what) {
    const CliRun r = shallow_cli(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0) == 0 || r.err.find("\nerror: ") != std::string::npos, true) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_TRUE(out_is_empty());
  }

  fs::path dir_;
};

TEST_F(ExtractCli, WritesLayersAndReports) {
  const CliRun r = shallow_cli(extract({"--layers", "1,final,pixels", "--pool", "all", "--batch", "2",
                                     "--threads", "1"}));
  set_num_threads(0);  // --threads set the process's thread count; give the other tests theirs
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote " + path("out/layer_1.npy")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak memory: "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("images/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ETA"), std::string::npos) << r.err;
  EXPECT_EQ(read_npy_array(path("out/layer_1.npy")).shape(), (Shape{3, 16}));
  EXPECT_EQ(read_npy_array(path("out/layer_final.npy")).shape(), (Shape{3, 12}));
  EXPECT_EQ(read_npy_array(path("out/layer_pixels.npy")).shape(), (Shape{3, 3, 16, 16}));
  std::ifstream list(path("out/images.txt"));
  std::string first;
  std::getline(list, first);
  EXPECT_EQ(first, path("images/a/cat.jpg"));
}

TEST_F(ExtractCli, UserMistakesAreExitCode2) {
  expect_user_error(extract({"--layers", "20"}), "layer 20 does not exist");
  expect_user_error(extract({"--pool", "max"}), "unknown pooling 'max'");
  expect_user_error(extract({"--act", "relu"}), "unknown activation 'relu'");
  expect_user_error(extract({"--dtype", "f16"}), "--dtype f16");
  expect_user_error(extract({"--device", "tpu"}), "tpu");

  fs::create_directories(path("empty"));
  std::vector<std::string> empty = extract({});
  empty[4] = path("empty");
  expect_user_error(empty, "no images in");

  write_safetensors(path("unknown.safetensors"), {{"body.fc.weight", Tensor::ones({2, 2})}});
  std::vector<std::string> unknown = extract({});
  unknown[2] = path("unknown.safetensors");
  expect_user_error(unknown, "unknown weights layout");

  std::ofstream(path("images/a/broken.png")) << "not a PNG";
  expect_user_error(extract({}), "broken.png");
  const CliRun skipped = shallow_cli(extract({"--skip-bad", "--quiet"}));
  EXPECT_EQ(skipped.code, 0) << skipped.err;
  EXPECT_NE(skipped.out.find("1 unreadable images skipped"), std::string::npos) << skipped.out;
  EXPECT_EQ(read_npy_array(path("out/layer_final.npy")).size(0), 3);

  // A missing required flag is CLI11's error, still exit code 2.
  const CliRun missing = shallow_cli({"extract", "--images", path("images")});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("--weights"), std::string::npos) << missing.err;
}

}  // namespace
