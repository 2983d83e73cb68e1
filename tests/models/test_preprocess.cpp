// The image pipeline against PIL + torchvision as OpenCLIP builds its transform
// (tests/reference/preprocess.py): decoding modes, the u8 crop before ToTensor on every case,
// the normalized tensor on a few, the batch helper, and the errors of unreadable files.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/image.h"
#include "models/preprocess.h"
#include "tests/support/fixtures.h"
#include "tests/support/errors.h"

using namespace shallow;
using shallow::testing::error_of;
using shallow::testing::all_close;
using shallow::testing::Fixture;
using shallow::testing::fixture_path;

namespace {

std::string image_path(const std::string& name) { return fixture_path("images/" + name); }

// How far apart two u8 [H, W, 3] images are, in levels of 255.
struct LevelDifference {
  int max = 0;
  double share_above_one = 0;  // fraction of the values more than 1 level apart
};

LevelDifference level_difference(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return {256, 1.0};
  const uint8_t* pa = a.data<uint8_t>();
  const uint8_t* pb = b.data<uint8_t>();
  LevelDifference d;
  int64_t above_one = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const int diff = std::abs(int(pa[i]) - int(pb[i]));
    d.max = std::max(d.max, diff);
    above_one += diff > 1;
  }
  d.share_above_one = double(above_one) / double(a.numel());
  return d;
}

// PIL's RGB crop for a case, saved by the reference script as an RGB PNG.
Tensor expected_crop(const std::string& case_name) {
  const DecodedImage png = decode_image_file(image_path("expected/" + case_name + ".png"));
  EXPECT_EQ(png.mode, ImageMode::RGB);
  Tensor t = Tensor::empty({png.height, png.width, 3}, DType::u8);
  std::copy(png.pixels.begin(), png.pixels.end(), t.data<uint8_t>());
  return t;
}

// A 1x1 CMYK JPEG as PIL writes it: Image.new("CMYK", (1, 1)).save(f, quality=50, optimize=True).
const std::string kCmykJpeg(
    "\xff\xd8\xff\xee\x00\x0e\x41\x64\x6f\x62\x65\x00\x64\x00\x00\x00\x00\x00\xff\xdb\x00\x43"
    "\x00\x10\x0b\x0c\x0e\x0c\x0a\x10\x0e\x0d\x0e\x12\x11\x10\x13\x18\x28\x1a\x18\x16\x16\x18"
    "\x31\x23\x25\x1d\x28\x3a\x33\x3d\x3c\x39\x33\x38\x37\x40\x48\x5c\x4e\x40\x44\x57\x45\x37"
    "\x38\x50\x6d\x51\x57\x5f\x62\x67\x68\x67\x3e\x4d\x71\x79\x70\x64\x78\x5c\x65\x67\x63\xff"
    "\xc0\x00\x14\x08\x00\x01\x00\x01\x04\x43\x11\x00\x4d\x11\x00\x59\x11\x00\x4b\x11\x00\xff"
    "\xc4\x00\x14\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\xff"
    "\xc4\x00\x14\x10\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff"
    "\xda\x00\x0e\x04\x43\x00\x4d\x00\x59\x00\x4b\x00\x00\x3f\x00\x40\x20\x10\x08\x0f\xff\xd9",
    176);

std::string temp_file(const std::string& name, const std::string& bytes) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("shallow_test_preprocess_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path.string();
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(Preprocess, MatchesPilOnEveryCase) {
  Fixture f("preprocess");
  const auto cases = nlohmann::json::parse(f.metadata().at("cases"));
  ASSERT_GE(cases.size(), 19u);
  std::map<std::string, int> modes_seen;
  for (const auto& c : cases) {
    const std::string name = c["name"], file = c["image"];
    SCOPED_TRACE(name + " (" + file + ")");
    const DecodedImage image = decode_image_file(image_path(file));
    EXPECT_EQ(mode_name(image.mode), c["mode"].get<std::string>());  // opened in PIL's mode
    EXPECT_EQ(image.width, c["width"].get<int>());
    EXPECT_EQ(image.height, c["height"].get<int>());
    ++modes_seen[mode_name(image.mode)];

    PreprocessConfig config;
    config.resize_size = c["resize"];
    config.crop_size = c["crop"];
    const Tensor ours = preprocess_u8(image, config);
    ASSERT_EQ(ours.shape(), (Shape{config.crop_size, config.crop_size, 3}));
    // Every case, PNG or JPEG, at every size and in every mode, is PIL's crop byte for byte.
    // JPEGs too, because they are decoded by libjpeg-turbo as PIL decodes them: stb_image's
    // decoder, which read them before, lands up to 3 levels away on these photographs (measured
    // after the resize: rocket_portrait_jpeg max 3 with 0.37% of the values more than 1 apart,
    // chelsea_landscape_jpeg max 3 with 1.10%, camera_gray_jpeg max 1).
    const LevelDifference diff = level_difference(ours, expected_crop(name));
    EXPECT_EQ(diff.max, 0) << "the crop must be PIL's, byte for byte; " << diff.share_above_one * 100
                           << "% of the values are more than 1 level apart";
  }
  for (const char* mode : {"L", "LA", "RGB", "RGBA", "P", "1", "I;16", "CMYK"})
    EXPECT_GT(modes_seen[mode], 0) << "no case in mode " << mode;
}

TEST(Preprocess, NormalizedMatchesOpenClip) {
  Fixture f("preprocess");
  const auto cases = nlohmann::json::parse(f.metadata().at("normalized"));
  ASSERT_EQ(cases.size(), 4u);
  for (const auto& c : cases) {
    const std::string key = c["key"], file = c["image"];
    SCOPED_TRACE(key);
    PreprocessConfig config;
    config.resize_size = c["resize"];
    config.crop_size = c["crop"];
    for (int i = 0; i < 3; ++i) {
      config.mean[i] = float(c["mean"][i].get<double>());
      config.std[i] = float(c["std"][i].get<double>());
    }
    // Our constants are the reference's, as float32.
    EXPECT_EQ(config.mean, key.starts_with("dinov2.") ? kImageNetMean : kClipMean);
    EXPECT_EQ(config.std, key.starts_with("dinov2.") ? kImageNetStd : kClipStd);
    const Tensor ours = preprocess_file(image_path(file), config);
    const Tensor expected = f.get(key);
    // The same float32 operations on the same bytes give the same floats, JPEG included.
    EXPECT_TRUE(all_close(ours, expected, 0.0, 0.0));
  }
}

TEST(Preprocess, ConfigsOfClipAndDinov2) {
  const PreprocessConfig clip = PreprocessConfig::clip();
  EXPECT_EQ(clip.resize_size, 224);
  EXPECT_EQ(clip.crop_size, 224);
  EXPECT_FLOAT_EQ(clip.mean[0], 0.48145466f);
  EXPECT_FLOAT_EQ(clip.std[2], 0.27577711f);
  const PreprocessConfig dino = PreprocessConfig::dinov2();
  EXPECT_EQ(dino.resize_size, 256);
  EXPECT_EQ(dino.crop_size, 224);
  EXPECT_FLOAT_EQ(dino.mean[1], 0.456f);
  EXPECT_FLOAT_EQ(dino.std[0], 0.229f);
}

TEST(Preprocess, ShorterSideAndCropOffsets) {
  // torchvision: the longer side is int(size * long / short).
  EXPECT_EQ(shorter_side_size(240, 347, 224).height, 323);
  EXPECT_EQ(shorter_side_size(240, 347, 224).width, 224);
  EXPECT_EQ(shorter_side_size(157, 100, 224).width, 351);
  EXPECT_EQ(shorter_side_size(300, 300, 224).width, 224);
  // Offsets round halves to even, as Python's round: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.
  DecodedImage column;
  column.mode = ImageMode::L;
  column.width = 1;
  for (int height : {2, 4, 6}) {
    column.height = height;
    column.pixels.resize(height);
    for (int y = 0; y < height; ++y) column.pixels[y] = uint8_t(y);
    const DecodedImage crop = center_crop(column, 1);
    const int expected_top = height == 2 ? 0 : height == 4 ? 2 : 2;
    EXPECT_EQ(crop.pixels[0], expected_top) << "height " << height;
  }
}

TEST(Preprocess, ModeConversions) {
  DecodedImage gray16;
  gray16.mode = ImageMode::I16;
  gray16.width = 4;
  gray16.height = 1;
  gray16.pixels16 = {0, 200, 255, 256};
  const DecodedImage rgb = convert_to_rgb(gray16);
  EXPECT_EQ(rgb.pixels, (std::vector<uint8_t>{0, 0, 0, 200, 200, 200, 255, 255, 255, 255, 255, 255}));

  DecodedImage la;
  la.mode = ImageMode::LA;
  la.width = 2;
  la.height = 1;
  la.pixels = {10, 0, 20, 255};
  EXPECT_EQ(convert_to_rgb(la).pixels, (std::vector<uint8_t>{10, 10, 10, 20, 20, 20}));

  // Resizing to the same size changes nothing, not even the colors of transparent pixels
  // (they would turn black through the premultiplied resize).
  DecodedImage rgba;
  rgba.mode = ImageMode::RGBA;
  rgba.width = rgba.height = 2;
  rgba.pixels = {255, 0, 0, 0, 0, 255, 0, 255, 1, 2, 3, 4, 9, 9, 9, 128};
  EXPECT_EQ(resize_bicubic(rgba, 2, 2).pixels, rgba.pixels);
  const DecodedImage bigger = resize_bicubic(rgba, 3, 3);
  EXPECT_EQ(bigger.mode, ImageMode::RGBA);
  EXPECT_EQ(bigger.pixels.size(), 3u * 3 * 4);
}

TEST(Preprocess, BatchStacksSingleImages) {
  const std::vector<std::string> paths = {image_path("rocket_portrait.jpg"),
                                          image_path("chelsea_palette.png"),
                                          image_path("noise_rgba.png")};
  const PreprocessConfig config = PreprocessConfig::clip(40);
  const Tensor batch = preprocess_files(paths, config);
  ASSERT_EQ(batch.shape(), (Shape{3, 3, 40, 40}));
  std::vector<DecodedImage> images;
  for (size_t i = 0; i < paths.size(); ++i) {
    images.push_back(decode_image_file(paths[i]));
    EXPECT_TRUE(all_close(batch.select(0, int64_t(i)), preprocess(images.back(), config), 0, 0));
  }
  EXPECT_TRUE(all_close(preprocess_batch(images, config), batch, 0, 0));
  EXPECT_EQ(preprocess_files({}, config).shape(), (Shape{0, 3, 40, 40}));

  // A bad file anywhere in the batch is an error naming it.
  const std::string missing = image_path("no_such_image.png");
  const std::string message = error_of([&] { preprocess_files({paths[0], missing}, config); });
  EXPECT_NE(message.find(missing), std::string::npos) << message;
}

TEST(Preprocess, NormalizeChecksItsInput) {
  const Tensor rgb = Tensor::zeros({2, 2, 3}, DType::u8);
  const Tensor out = normalize_rgb(rgb, kClipMean, kClipStd);
  ASSERT_EQ(out.shape(), (Shape{3, 2, 2}));
  EXPECT_FLOAT_EQ(out.to_vector<float>()[0], (0.0f - kClipMean[0]) / kClipStd[0]);
  EXPECT_NE(error_of([&] { normalize_rgb(Tensor::zeros({2, 2, 4}, DType::u8), kClipMean, kClipStd); })
                .find("normalize_rgb: expected a u8 [H, W, 3] tensor, got u8 [2, 2, 4]"),
            std::string::npos);
  EXPECT_THROW(normalize_rgb(Tensor::zeros({2, 2, 3}), kClipMean, kClipStd), Error);
  PreprocessConfig bad;
  bad.crop_size = 300;
  const DecodedImage image = decode_image_file(image_path("camera_la.png"));
  EXPECT_NE(error_of([&] { preprocess(image, bad); }).find("crop_size <= resize_size"),
            std::string::npos);
}

TEST(ImageDecode, UnreadableFilesNameTheFileAndTheReason) {
  const std::string missing = image_path("no_such_image.jpg");
  std::string message = error_of([&] { decode_image_file(missing); });
  EXPECT_NE(message.find(missing + ": cannot open image"), std::string::npos) << message;

  // A JPEG that ends early fails as in PIL, wherever it ends: in the headers (300 bytes), in
  // the pixels (half), or just before the final EOI marker (all but 2 bytes).
  const std::string jpeg = file_bytes(image_path("rocket_portrait.jpg"));
  ASSERT_GT(jpeg.size(), 4000u);
  ASSERT_EQ(jpeg.substr(jpeg.size() - 2), "\xff\xd9");
  for (size_t keep : {jpeg.size() - 2, jpeg.size() / 2, size_t(300)}) {
    const std::string truncated = temp_file("truncated.jpg", jpeg.substr(0, keep));
    message = error_of([&] { decode_image_file(truncated); });
    EXPECT_NE(message.find(truncated + ": cannot decode image: Premature end of JPEG file (libjpeg)"),
              std::string::npos) << "kept " << keep << " bytes: " << message;
    std::filesystem::remove(truncated);
  }

  // A header libjpeg refuses: the frame's sample precision changed from 8 to 12 bits.
  std::string twelve_bits = jpeg;
  const size_t frame = twelve_bits.find("\xff\xc0");
  ASSERT_NE(frame, std::string::npos);
  twelve_bits[frame + 4] = 12;
  message = error_of([&] { decode_image_memory(reinterpret_cast<const uint8_t*>(twelve_bits.data()),
                                               twelve_bits.size(), "twelve.jpg"); });
  EXPECT_NE(message.find("twelve.jpg: cannot decode image: Unsupported JPEG data precision 12 (libjpeg)"),
            std::string::npos) << message;

  // A CMYK JPEG opens as PIL opens it: mode "CMYK", Adobe's inverted samples turned back into
  // ink coverage (this one has no ink: white), and its truncation is an error like any other.
  const DecodedImage cmyk = decode_image_memory(
      reinterpret_cast<const uint8_t*>(kCmykJpeg.data()), kCmykJpeg.size(), "cmyk.jpg");
  EXPECT_EQ(cmyk.mode, ImageMode::CMYK);
  EXPECT_EQ(cmyk.pixels, (std::vector<uint8_t>{0, 0, 0, 0}));
  EXPECT_EQ(convert_to_rgb(cmyk).pixels, (std::vector<uint8_t>{255, 255, 255}));
  message = error_of([&] { decode_image_memory(reinterpret_cast<const uint8_t*>(kCmykJpeg.data()),
                                               kCmykJpeg.size() - 20, "cmyk.jpg"); });
  EXPECT_NE(message.find("cmyk.jpg: cannot decode image: "), std::string::npos) << message;

  const std::string png = file_bytes(image_path("coffee.png"));
  const std::string truncated_png = temp_file("truncated.png", png.substr(0, png.size() / 2));
  message = error_of([&] { decode_image_file(truncated_png); });
  EXPECT_NE(message.find(truncated_png + ": cannot decode image: "), std::string::npos) << message;
  std::filesystem::remove(truncated_png);

  const std::string text = temp_file("notes.png", "these are not the pixels you are looking for\n");
  message = error_of([&] { decode_image_file(text); });
  EXPECT_NE(message.find(text + ": cannot decode image: unknown image type (stb_image)"),
            std::string::npos) << message;
  std::filesystem::remove(text);

  const std::string empty = temp_file("empty.jpg", "");
  message = error_of([&] { decode_image_file(empty); });
  EXPECT_NE(message.find(empty + ": cannot decode image: the file is empty"), std::string::npos)
      << message;
  std::filesystem::remove(empty);

  message = error_of([&] { decode_image_file(fixture_path("images")); });
  EXPECT_NE(message.find("it is a directory"), std::string::npos) << message;
}

TEST(ImageDecode, JpegDamageThatPilToleratesIsNoError) {
  // Stray bytes before the EOI marker: libjpeg warns ("Corrupt JPEG data: 2 extraneous bytes
  // before marker 0xd9"), PIL ignores the warning and keeps the pixels, and so do we.
  const std::string jpeg = file_bytes(image_path("rocket_portrait.jpg"));
  const std::string padded = jpeg.substr(0, jpeg.size() - 2) + std::string(2, '\0') + "\xff\xd9";
  const DecodedImage clean = decode_image_file(image_path("rocket_portrait.jpg"));
  const DecodedImage damaged = decode_image_memory(reinterpret_cast<const uint8_t*>(padded.data()),
                                                   padded.size(), "padded.jpg");
  EXPECT_EQ(damaged.mode, ImageMode::RGB);
  EXPECT_EQ(damaged.width, clean.width);
  EXPECT_EQ(damaged.height, clean.height);
  EXPECT_EQ(damaged.pixels, clean.pixels);
}

TEST(ImageDecode, ModesAndSamples) {
  // The committed cases check each mode's name against PIL; this checks what each one stores.
  const DecodedImage p = decode_image_file(image_path("chelsea_palette.png"));
  EXPECT_EQ(p.mode, ImageMode::P);
  EXPECT_EQ(p.pixels.size(), size_t(p.width) * p.height * 3);  // palette applied
  const DecodedImage g16 = decode_image_file(image_path("camera_gray16.png"));
  EXPECT_EQ(g16.mode, ImageMode::I16);
  EXPECT_TRUE(g16.pixels.empty());
  ASSERT_EQ(g16.pixels16.size(), size_t(g16.width) * g16.height);
  EXPECT_GT(*std::max_element(g16.pixels16.begin(), g16.pixels16.end()), 255);  // full 16 bits
  const DecodedImage trns = decode_image_file(image_path("camera_gray_trns.png"));
  EXPECT_EQ(trns.mode, ImageMode::L);  // a tRNS chunk adds no alpha band, as in PIL
  EXPECT_EQ(trns.pixels.size(), size_t(trns.width) * trns.height);
  const DecodedImage bilevel = decode_image_file(image_path("camera_bilevel.png"));
  EXPECT_EQ(bilevel.mode, ImageMode::Bilevel);
  for (uint8_t v : bilevel.pixels) ASSERT_TRUE(v == 0 || v == 255);
}
