#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apps/shallow/commands.h"
#include "tests/support/fixtures.h"
#include "weights_import/numpy.h"
#include "weights_import/safetensors.h"

namespace shallow::testing {
namespace {

struct CliResult {  // exit code and what the command printed
  int code;
  std::string out, err;
};

CliResult shallow_cli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = cli::run(args, out, err);
  return {code, out.str(), err.str()};
}

std::string weights(const std::string& name) { return fixture_path("weights/" + name); }

class CliScratch : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shallow_cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST(CliInspect, ListsEveryTensorWithDtypeShapeAndBytes) {
  const CliResult r = shallow_cli({"inspect", weights("torch_zip.pt")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("pytorch zip, 22 tensors"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model weights under 'state_dict.'"), std::string::npos);
  EXPECT_NE(r.out.find("state_dict.0.weight  f32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[3, 4]"), std::string::npos);
  EXPECT_NE(r.out.find("i32 (stored i16)"), std::string::npos);
  EXPECT_NE(r.out.find("epoch: 7"), std::string::npos);
}

TEST(CliInspect, JsonHasTheSameContent) {
  const CliResult r = shallow_cli({"inspect", weights("all_dtypes.safetensors"), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "safetensors");
  EXPECT_EQ(j["tensor_count"], 12);
  bool saw_i16 = false;
  for (auto& t : j["tensors"]) {
    if (t["name"] != "i16") continue;
    saw_i16 = true;
    EXPECT_EQ(t["dtype"], "i32");
    EXPECT_EQ(t["stored_dtype"], "i16");
    EXPECT_EQ(t["shape"], nlohmann::json::array({3, 5}));
    EXPECT_EQ(t["bytes"], 60);
  }
  EXPECT_TRUE(saw_i16);
  EXPECT_EQ(j["metadata"]["purpose"], "weights import tests");
}

TEST(CliInspect, NamesTheModelItRecognizes) {
  const CliResult r = shallow_cli({"inspect", fixture_path("models/hf_clip/model.safetensors")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("model: HF CLIP"), std::string::npos) << r.out;
  const CliResult j = shallow_cli({"inspect", "--json", fixture_path("models/hf_clip/model.safetensors")});
  EXPECT_NE(nlohmann::json::parse(j.out)["model"].get<std::string>().find("width 16"), std::string::npos);
  // No model in a NumPy dict.
  EXPECT_EQ(shallow_cli({"inspect", weights("things_eeg_like.npy")}).out.find("model:"), std::string::npos);
}

TEST(CliInspect, NumpyDictShowsItsKeys) {
  const CliResult r = shallow_cli({"inspect", weights("things_eeg_like_np1.npy")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("preprocessed_eeg_data: tensor f32 [4, 2, 3, 5]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ch_names: list of 3 items: Fp1, Fp2, Fz"), std::string::npos) << r.out;
  const CliResult j = shallow_cli({"inspect", "--json", weights("things_eeg_like.npy")});
  ASSERT_EQ(j.code, 0);
  EXPECT_EQ(nlohmann::json::parse(j.out)["dict_keys"]["times"], "tensor f64 [5]");
}

TEST_F(CliScratch, BadFilesGiveErrorAndExitCode2) {
  const CliResult missing = shallow_cli({"inspect", file("nope.safetensors")});
  EXPECT_EQ(missing.code, 2);
  EXPECT_EQ(missing.err.rfind("error: ", 0), 0u) << missing.err;
  EXPECT_NE(missing.err.find("nope.safetensors"), std::string::npos);

  // A checkpoint cut in half.
  std::ifstream in(weights("torch_legacy.pt"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(file("cut.pt"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  const CliResult cut = shallow_cli({"inspect", file("cut.pt")});
  EXPECT_EQ(cut.code, 2);
  EXPECT_NE(cut.err.find("error: " + file("cut.pt")), std::string::npos) << cut.err;

  std::ofstream(file("text.bin")) << "hello";
  const CliResult text = shallow_cli({"inspect", file("text.bin")});
  EXPECT_EQ(text.code, 2);
  EXPECT_NE(text.err.find("unrecognized file format"), std::string::npos) << text.err;
}

TEST(Cli, UsageMistakesAndHelp) {
  EXPECT_EQ(shallow_cli({}).code, 2);
  EXPECT_EQ(shallow_cli({"inspect"}).code, 2);
  EXPECT_EQ(shallow_cli({"inspect", "a", "--bogus"}).code, 2);
  EXPECT_EQ(shallow_cli({"frobnicate"}).code, 2);
  const CliResult help = shallow_cli({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("inspect"), std::string::npos);
  EXPECT_NE(help.out.find("convert"), std::string::npos);
  EXPECT_EQ(shallow_cli({"inspect", "--help"}).code, 0);
}

TEST_F(CliScratch, ConvertsALegacyCheckpointToSafetensors) {
  const CliResult r = shallow_cli({"convert", weights("torch_legacy.pt"), file("out.safetensors")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("note: dtypes.i16 is stored as i16 and written as i32"), std::string::npos) << r.err;
  const SafetensorsFile out = read_safetensors(file("out.safetensors"));
  const SafetensorsFile expected = read_safetensors(weights("torch_expected.safetensors"));
  ASSERT_EQ(out.tensors.size(), expected.tensors.size());
  for (auto& [name, want] : expected.tensors) {
    const Tensor got = out.tensors.at(name);
    ASSERT_EQ(got.dtype(), want.dtype()) << name;  // both widened the same way on reading
    EXPECT_EQ(got.shape(), want.shape()) << name;
    EXPECT_EQ(got.to_vector<double>(), want.to_vector<double>()) << name;
  }
  EXPECT_EQ(out.metadata.at("epoch"), "7");
  EXPECT_EQ(out.metadata.at("converted_from"), "pytorch legacy");
}

TEST_F(CliScratch, ConvertsToNpzAndRefusesOtherEndings) {
  const CliResult r = shallow_cli({"convert", weights("all_dtypes.safetensors"), file("out.npz")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("bf16 is bf16, written as f32"), std::string::npos) << r.err;
  const TensorFile back = read_npz(file("out.npz"));
  EXPECT_EQ(back.tensors.size(), 12u);
  EXPECT_EQ(back.tensors.at("bf16").dtype(), DType::f32);
  EXPECT_EQ(back.tensors.at("f32").to_vector<double>(),
            read_safetensors(weights("all_dtypes.safetensors")).tensors.at("f32").to_vector<double>());

  const CliResult bad = shallow_cli({"convert", weights("all_dtypes.safetensors"), file("out.pt")});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("must end in .safetensors or .npz"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(file("out.pt")));
  const CliResult same = shallow_cli({"convert", file("out.npz"), file("out.npz")});
  EXPECT_EQ(same.code, 2);
  EXPECT_NE(same.err.find("is the input file itself"), std::string::npos);
}

}  // namespace
}  // namespace shallow::testing
