#pragma once
// OpenCLIP's image transform for inference, step for step and bit for bit:
//
//   Resize(resize_size, BICUBIC)  torchvision on a PIL image: the shorter side becomes
//                                 resize_size, by PIL's antialiased bicubic filter in 8-bit
//                                 fixed point, horizontal pass then vertical pass
//   CenterCrop(crop_size)         torchvision's rounding of the offsets
//   convert("RGB")                PIL's conversions from the image's own mode
//   ToTensor, Normalize           scale to [0, 1], then (x - mean) / std, in float32
//
// The order matters for the modes PIL treats apart when resizing: palette ("P") and bilevel
// images are resized by nearest neighbour, LA and RGBA ones premultiplied by their alpha, 16-bit
// gray in 16 bits; only the crop is converted to RGB (alpha dropped, palette applied, 16-bit
// values above 255 clipped).
#include <array>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/image.h"

namespace shallow {

constexpr std::array<float, 3> kClipMean{float(0.48145466), float(0.4578275), float(0.40821073)};
constexpr std::array<float, 3> kClipStd{float(0.26862954), float(0.26130258), float(0.27577711)};
constexpr std::array<float, 3> kImageNetMean{float(0.485), float(0.456), float(0.406)};
constexpr std::array<float, 3> kImageNetStd{float(0.229), float(0.224), float(0.225)};

struct PreprocessConfig {
  int resize_size = 224;  // the shorter side after resizing
  int crop_size = 224;    // the side of the square center crop: the model's input size
  std::array<float, 3> mean = kClipMean;
  std::array<float, 3> std = kClipStd;

  // OpenCLIP and OpenAI CLIP: resize to the input size, CLIP's mean and std.
  static PreprocessConfig clip(int size = 224) { return {size, size, kClipMean, kClipStd}; }
  // DINOv2's evaluation transform: resize to 256, crop 224, ImageNet's mean and std.
  static PreprocessConfig dinov2(int resize_size = 256, int crop_size = 224) {
    return {resize_size, crop_size, kImageNetMean, kImageNetStd};
  }
};

// ---- The steps, each as PIL or torchvision does it.

struct ImageSize {
  int width = 0;
  int height = 0;
};
// torchvision's size for Resize(size) on a width x height image: the shorter side becomes `size`,
// the longer one int(size * long / short).
ImageSize shorter_side_size(int width, int height, int size);
// PIL's Image.resize((width, height), BICUBIC), with its rules per mode.
DecodedImage resize_bicubic(const DecodedImage& image, int width, int height);
// torchvision's Resize(size, interpolation=BICUBIC) on a PIL image (unchanged if already that size).
DecodedImage resize_shorter_side(const DecodedImage& image, int size);
// torchvision's CenterCrop(size); the crop must fit inside the image.
DecodedImage center_crop(const DecodedImage& image, int size);
// PIL's Image.convert("RGB").
DecodedImage convert_to_rgb(const DecodedImage& image);

// ---- The whole transform.

// The RGB crop before scaling: u8 [crop, crop, 3], what PIL hands to ToTensor.
Tensor preprocess_u8(const DecodedImage& image, const PreprocessConfig& config = {});
// ToTensor and Normalize of an RGB u8 [H, W, 3] tensor: f32 [3, H, W].
Tensor normalize_rgb(const Tensor& rgb, const std::array<float, 3>& mean,
                     const std::array<float, 3>& std);
// The model's input: f32 [3, crop, crop].
Tensor preprocess(const DecodedImage& image, const PreprocessConfig& config = {});
Tensor preprocess_file(const std::string& path, const PreprocessConfig& config = {});
// Many images at once, decoded and transformed on the engine's threads: f32 [N, 3, crop, crop].
// The first image that cannot be read throws shallow::Error naming it.
Tensor preprocess_batch(const std::vector<DecodedImage>& images, const PreprocessConfig& config = {});
Tensor preprocess_files(const std::vector<std::string>& paths, const PreprocessConfig& config = {});

}  // namespace shallow
