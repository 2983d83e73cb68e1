// `shallow extract` as a library: weights files of every family loaded through the app's glue
// (format, layout, config file, defaults) giving the reference libraries' numbers; the run
// itself on a folder of real images (files, shapes, row order, pixels, pooling, batching,
// unreadable images, atomic outputs) and its errors.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "apps/decoding/extract.h"
#include "apps/decoding/extract_images.h"
#include "apps/decoding/extract_model.h"
#include "engine/autograd.h"
#include "engine/ops/reduce.h"
#include "tests/support/fixtures.h"
#include "tests/support/errors.h"
#include "weights_import/numpy.h"
#include "weights_import/safetensors.h"
#include "weights_import/tensor_file.h"

using namespace shallow;
using shallow::testing::error_of;
using namespace shallow::decoding;
using shallow::testing::all_close;
using shallow::testing::Fixture;
using shallow::testing::fixture_path;
namespace fs = std::filesystem;

namespace {

std::string model_file(const std::string& relative) { return fixture_path("models/" + relative); }

// A fresh folder under the system's temporary directory, removed at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() /
              ("shallow_test_extract_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }
  fs::path operator/(const std::string& p) const { return path_ / p; }

 private:
  fs::path path_;
};

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A small THINGS-like tree of real images: two concept folders, files out of name order on
// disk, a text file that must be ignored.
void make_image_tree(const TempDir& dir) {
  auto copy = [&](const std::string& from, const std::string& to) {
    fs::create_directories((dir / to).parent_path());
    fs::copy_file(fixture_path("images/" + from), dir / to);
  };
  copy("horse.png", "images/00002_horse/horse_01.png");
  copy("chelsea_small.jpg", "images/00001_cat/cat_02.jpg");
  copy("coffee.png", "images/00001_cat/cat_01.png");
  copy("camera_gray.png", "images/00002_horse/horse_00.png");
  copy("chelsea_palette.png", "images/00003_palette/p.PNG");
  write_text(dir / "images/00001_cat/notes.txt", "not an image");
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

ExtractOptions clip_options(const TempDir& dir) {
  ExtractOptions o;
  o.weights = model_file("hf_clip/model.safetensors");
  o.images = (dir / "images").string();
  o.out_dir = (dir / "out").string();
  o.progress = false;
  o.batch = 2;
  return o;
}

// ---------------------------------------------------------------- loading every family

struct FamilyCase {
  std::string name, weights;
  int64_t prefix_tokens;  // class and register tokens, for the mean pooling check
  ModelSettings extra;    // what no file beside the weights says
};

class ExtractFamilies : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(ExtractFamilies, LoadedThroughTheAppGiveTheLibrarysNumbers) {
  const FamilyCase& c = GetParam();
  const std::string weights = model_file(c.name + "/" + c.weights);
  // The config beside the weights (HF config.json, OpenCLIP's open_clip_config.json) is read
  // as the CLI reads it; the case adds what no file says.
  ModelSettings settings;
  for (const char* cfg : {"config.json", "open_clip_config.json"})
    if (fs::exists(model_file(c.name + "/" + cfg))) settings = read_model_settings(model_file(c.name + "/" + cfg));
  if (c.extra.heads) settings.heads = c.extra.heads;
  if (c.extra.input_size) settings.input_size = c.extra.input_size;
  const LoadedBackbone loaded = load_backbone(read_tensor_file(weights).tensors, settings);
  const Fixture f("models/" + c.name + "/expected");
  const Tensor images = f.get("images").to(DType::f32);
  models::Backbone& b = *loaded.backbone;

  const models::LayerOutputs tokens = b.extract(images, b.layers(), models::Pooling::none);
  for (int64_t l : b.layers()) {
    const std::string key = l == models::kFinalLayer ? "final" : "layer_" + std::to_string(l);
    EXPECT_TRUE(all_close(tokens.at(l), f.get(key), 1e-4, 0)) << c.name << " " << key;
  }
  const bool resnet = loaded.architecture.is_resnet();
  const models::LayerOutputs pooled = b.extract(images, {resnet ? 2 : 1}, models::Pooling::mean);
  NoGrad no_grad;
  const Tensor want = resnet ? mean(f.get("layer_2"), {2, 3})
                             : mean(f.get("layer_1").slice(1, c.prefix_tokens, f.get("layer_1").size(1)), {1});
  EXPECT_TRUE(all_close(pooled.begin()->second, want, 1e-4, 0)) << c.name << " mean pooling";
}

ModelSettings with(int64_t heads, int64_t input_size) {
  ModelSettings s;
  s.heads = heads;
  s.input_size = input_size;
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Weights, ExtractFamilies,
    ::testing::Values(FamilyCase{"hf_clip", "model.safetensors", 1, {}},
                      FamilyCase{"openclip_vit", "open_clip_pytorch_model.bin", 1, {}},
                      FamilyCase{"timm_vit", "model.pth", 1, with(2, 0)},
                      FamilyCase{"timm_vit_avg", "model.safetensors", 0, with(2, 0)},
                      FamilyCase{"hf_dinov2", "model.safetensors", 1, with(0, 16)},
                      FamilyCase{"hf_dinov2_registers", "model.safetensors", 3, with(0, 16)},
                      FamilyCase{"openclip_resnet", "epoch_7.pt", 0, {}}),
    [](const auto& info) { return info.param.name; });

TEST(ExtractModel, ConfigFilesAndDefaults) {
  // HF CLIP: config.json beside the weights is found and read; the activation is HF's.
  const LoadedBackbone clip = load_backbone(model_file("hf_clip/model.safetensors"));
  ASSERT_FALSE(clip.notes.empty());
  EXPECT_NE(clip.notes[0].find("config.json"), std::string::npos);
  EXPECT_NE(clip.backbone->describe().find("quick_gelu"), std::string::npos);
  EXPECT_EQ(clip.backbone->preprocess().crop_size, 16);
  EXPECT_EQ(clip.backbone->preprocess().mean, kClipMean);

  // DINOv2 runs at 224 by default with ImageNet's statistics and a 256/224 resize.
  const LoadedBackbone dino = load_backbone(model_file("hf_dinov2/model.safetensors"));
  EXPECT_EQ(dino.backbone->input_size(), 224);
  EXPECT_EQ(dino.backbone->preprocess().resize_size, 256);
  EXPECT_EQ(dino.backbone->preprocess().mean, kImageNetMean);

  // This project's own keys override; an unknown key is an error naming it.
  TempDir dir("config");
  write_text(dir / "own.json", R"({"heads": 4, "act": "quick_gelu", "input_size": 32,
                                   "resize_size": 40, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})");
  BackboneOptions opt;
  opt.config_path = (dir / "own.json").string();
  const LoadedBackbone own = load_backbone(model_file("hf_dinov2/model.safetensors"), opt);
  EXPECT_NE(own.backbone->describe().find("4 heads"), std::string::npos);
  EXPECT_NE(own.backbone->describe().find("quick_gelu"), std::string::npos);
  EXPECT_EQ(own.backbone->preprocess().crop_size, 32);
  EXPECT_EQ(own.backbone->preprocess().resize_size, 40);
  EXPECT_EQ(own.backbone->preprocess().mean, (std::array<float, 3>{0.5f, 0.5f, 0.5f}));
  opt.act = models::Activation::gelu;  // --act beats the config
  EXPECT_NE(load_backbone(model_file("hf_dinov2/model.safetensors"), opt).backbone->describe().find("gelu"),
            std::string::npos);

  write_text(dir / "typo.json", R"({"head": 4})");
  opt.config_path = (dir / "typo.json").string();
  EXPECT_NE(error_of([&] { load_backbone(model_file("hf_dinov2/model.safetensors"), opt); })
                .find("unknown key 'head'"), std::string::npos);
  // A config for another model is caught.
  write_text(dir / "wide.json", R"({"model_type": "clip_vision_model", "hidden_size": 32})");
  opt.config_path = (dir / "wide.json").string();
  EXPECT_NE(error_of([&] { load_backbone(model_file("hf_clip/model.safetensors"), opt); })
                .find("width 32"), std::string::npos);
  // Without any config, a 16-wide model's heads cannot be guessed.
  EXPECT_NE(error_of([&] { load_backbone(model_file("timm_vit/model.pth")); }).find("--config"),
            std::string::npos);
}

TEST(ExtractModel, ResNetAttentionPoolHeadsDefaultToOpenClips) {
  // OpenCLIP gives a ModifiedResNet's pool 64 channels per head at every width (RN50: 2048
  // channels, 32 heads), unlike the ViTs' 16 heads above width 1024.
  models::ClipResNetConfig c;
  c.layers = {1, 1, 1, 1};
  c.width = 48;  // 1536 channels
  c.heads = 24;
  c.output_dim = 8;
  models::ClipResNet net(c);
  name_maps::Tensors file;
  for (const auto& [name, t] : net.state_dict()) file["visual." + name] = t;
  const LoadedBackbone loaded = load_backbone(file, ModelSettings{});
  EXPECT_NE(loaded.backbone->describe().find("24 heads"), std::string::npos)
      << loaded.backbone->describe();
}

// ---------------------------------------------------------------- the run

TEST(Extract, ListsImagesSortedAndReadsLists) {
  TempDir dir("list");
  make_image_tree(dir);
  const auto paths = list_images((dir / "images").string());
  ASSERT_EQ(paths.size(), 5u);
  EXPECT_EQ(fs::path(paths[0]).filename(), "cat_01.png");
  EXPECT_EQ(fs::path(paths[1]).filename(), "cat_02.jpg");
  EXPECT_EQ(fs::path(paths[2]).filename(), "horse_00.png");
  EXPECT_EQ(fs::path(paths[4]).filename(), "p.PNG");

  write_text(dir / "list.txt", "# chosen images\nimages/00002_horse/horse_01.png\n\n  " +
                                   (dir / "images/00001_cat/cat_01.png").string() + "  \n");
  const auto listed = list_images((dir / "list.txt").string());
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0], (dir / "images/00002_horse/horse_01.png").string());  // from the list's folder
  EXPECT_EQ(listed[1], (dir / "images/00001_cat/cat_01.png").string());

  fs::create_directories(dir / "empty/sub");
  write_text(dir / "empty/sub/readme.md", "nothing");
  EXPECT_NE(error_of([&] { list_images((dir / "empty").string()); }).find("no images"), std::string::npos);
  EXPECT_NE(error_of([&] { list_images((dir / "missing").string()); }).find("no such"), std::string::npos);
}

TEST(Extract, WritesEveryLayerPixelsAndTheImageList) {
  TempDir dir("run");
  make_image_tree(dir);
  ExtractOptions o = clip_options(dir);
  o.layers = "0,2,final,pixels";
  o.progress = true;  // a log that is not a terminal gets a line per tenth of the way
  std::ostringstream log;
  const ExtractResult r = run_extract(o, log);
  EXPECT_EQ(r.images, 5);
  EXPECT_TRUE(r.skipped.empty());
  EXPECT_GT(r.peak_bytes, 0);
  EXPECT_EQ(files_in(dir / "out"), (std::vector<std::string>{"images.txt", "layer_0.npy", "layer_2.npy",
                                                              "layer_final.npy", "layer_pixels.npy"}));
  EXPECT_EQ(read_lines(dir / "out/images.txt"), list_images((dir / "images").string()));
  EXPECT_NE(log.str().find("images/s"), std::string::npos) << log.str();  // the progress lines

  // The pixels are the preprocessed images, in row order; the layers are the model's.
  const Tensor pixels = read_npy_array((dir / "out/layer_pixels.npy").string());
  ASSERT_EQ(pixels.shape(), (Shape{5, 3, 16, 16}));
  const auto paths = read_lines(dir / "out/images.txt");
  const LoadedBackbone b = load_backbone(o.weights);
  for (size_t i = 0; i < paths.size(); ++i)
    EXPECT_TRUE(all_close(pixels.select(0, int64_t(i)), preprocess_file(paths[i], b.backbone->preprocess()), 0, 0));
  const auto want = b.backbone->extract(pixels, {0, 2, models::kFinalLayer}, models::Pooling::cls);
  EXPECT_TRUE(all_close(read_npy_array((dir / "out/layer_2.npy").string()), want.at(2), 1e-5, 0));
  const Tensor final = read_npy_array((dir / "out/layer_final.npy").string());
  EXPECT_EQ(final.shape(), (Shape{5, 12}));
  EXPECT_EQ(final.dtype(), DType::f32);
  EXPECT_TRUE(all_close(final, want.at(models::kFinalLayer), 1e-5, 0));
}

TEST(Extract, BatchSizeThreadsAndPoolingDoNotChangeRows) {
  TempDir dir("batch");
  make_image_tree(dir);
  ExtractOptions o = clip_options(dir);
  o.layers = "all";
  o.pooling = models::Pooling::none;
  std::ostringstream log;
  o.batch = 1;
  o.decode_threads = 3;
  run_extract(o, log);
  const Tensor one = read_npy_array((dir / "out/layer_3.npy").string());
  EXPECT_EQ(one.shape(), (Shape{5, 17, 16}));  // every token kept
  o.batch = 4;
  o.decode_threads = 1;
  o.out_dir = (dir / "out4").string();
  run_extract(o, log);
  EXPECT_TRUE(all_close(read_npy_array((dir / "out4/layer_3.npy").string()), one, 1e-5, 0));
  EXPECT_EQ(files_in(dir / "out4").size(), 6u);  // layers 0..3, final, images.txt
}

TEST(Extract, UnreadableImagesFailWithTheirNameOrAreSkipped) {
  TempDir dir("bad");
  make_image_tree(dir);
  write_text(dir / "images/00001_cat/cat_03.jpg", "this is not a JPEG");
  ExtractOptions o = clip_options(dir);
  std::ostringstream log;
  const std::string err = error_of([&] { run_extract(o, log); });
  EXPECT_NE(err.find("cat_03.jpg"), std::string::npos) << err;
  EXPECT_TRUE(files_in(dir / "out").empty()) << "a failed run leaves no file behind";

  o.skip_bad = true;
  o.layers = "final,pixels";
  const ExtractResult r = run_extract(o, log);
  EXPECT_EQ(r.images, 5);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find("cat_03.jpg"), std::string::npos);
  EXPECT_NE(log.str().find("skipped: "), std::string::npos);
  const auto rows = read_lines(dir / "out/images.txt");
  EXPECT_EQ(rows.size(), 5u);
  for (const auto& row : rows) EXPECT_EQ(row.find("cat_03"), std::string::npos);
  EXPECT_EQ(read_npy_array((dir / "out/layer_final.npy").string()).size(0), 5);
  EXPECT_EQ(read_npy_array((dir / "out/layer_pixels.npy").string()).size(0), 5);
}

TEST(Extract, BadRequestsAreClearErrorsBeforeAnyWork) {
  TempDir dir("errors");
  make_image_tree(dir);
  std::ostringstream log;
  ExtractOptions o = clip_options(dir);
  o.layers = "0,20";
  std::string err = error_of([&] { run_extract(o, log); });
  EXPECT_NE(err.find("layer 20 does not exist"), std::string::npos) << err;
  EXPECT_NE(err.find("0..3 and final"), std::string::npos) << err;
  o.layers = "2,last";
  EXPECT_NE(error_of([&] { run_extract(o, log); }).find("bad layer 'last'"), std::string::npos);
  o.layers = " , ";
  EXPECT_NE(error_of([&] { run_extract(o, log); }).find("names no layer"), std::string::npos);

  o = clip_options(dir);
  o.weights = model_file("openclip_resnet/epoch_7.pt");
  o.layers = "2";
  o.pooling = models::Pooling::cls;
  EXPECT_NE(error_of([&] { run_extract(o, log); }).find("no class token"), std::string::npos);

  // Weights of a layout no family has.
  write_safetensors((dir / "mystery.safetensors").string(), {{"encoder.layers.0.w", Tensor::ones({4, 4})}});
  o = clip_options(dir);
  o.weights = (dir / "mystery.safetensors").string();
  EXPECT_NE(error_of([&] { run_extract(o, log); }).find("unknown weights layout"), std::string::npos);
  o.weights = (dir / "nothing.pt").string();
  EXPECT_NE(error_of([&] { run_extract(o, log); }).find("not found"), std::string::npos);

  o = clip_options(dir);
  fs::create_directories(dir / "no_images");
  o.images = (dir / "no_images").string();
  EXPECT_NE(error_of([&] { run_extract(o, log); }).find("no images"), std::string::npos);

  o = clip_options(dir);
  o.device = Device::cuda(7);  // absent with or without a GPU here
  EXPECT_NE(error_of([&] { run_extract(o, log); }).find("--device cuda:7: no such CUDA device"),
            std::string::npos);
  o = clip_options(dir);
  o.batch = 0;
  EXPECT_NE(error_of([&] { run_extract(o, log); }).find("--batch"), std::string::npos);
  EXPECT_TRUE(files_in(dir / "out").empty());
}

TEST(Extract, Bf16ModelStaysCloseToF32) {
  TempDir dir("bf16");
  make_image_tree(dir);
  ExtractOptions o = clip_options(dir);
  std::ostringstream log;
  run_extract(o, log);
  const Tensor f32 = read_npy_array((dir / "out/layer_final.npy").string());
  o.model.dtype = DType::bf16;
  o.out_dir = (dir / "bf16").string();
  run_extract(o, log);
  const Tensor bf16 = read_npy_array((dir / "bf16/layer_final.npy").string());
  EXPECT_EQ(bf16.dtype(), DType::f32);  // files are float32 whatever the model computes in
  const auto a = f32.to_vector<double>(), b = bf16.to_vector<double>();
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i], na += a[i] * a[i], nb += b[i] * b[i];
  EXPECT_GT(dot / std::sqrt(na * nb), 0.99);
}

TEST(Extract, SplitsLayerNames) {
  EXPECT_EQ(split_layer_names("0, 4,final,,pixels "),
            (std::vector<std::string>{"0", "4", "final", "pixels"}));
  EXPECT_TRUE(split_layer_names("").empty());
}

}  // namespace
