// PIL's resampling and conversions, written again from how Pillow's libImaging computes them
// (Resample.c, Geometry.c, Convert.c), so that every output byte can be the same as PIL's.
// This file is compiled with -ffp-contract=off, as PIL's wheels are in effect: a fused
// multiply-add rounds once where PIL rounds twice, which could move a filter weight by one unit
// in the last place and, rarely, a fixed-point weight and a pixel with it.
#include "models/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/error.h"
#include "kernels/cpu/parallel.h"

namespace shallow {
namespace {

// ------------------------------------------------------------------ bicubic filter taps

// Keys' cubic with a = -0.5, as PIL writes it.
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
constexpr double kBicubicSupport = 2.0;

// For each output position: the first input sample it reads, how many, and their weights
// (`ksize` slots each, unused ones zero). PIL's precompute_coeffs for the box (0, in_size).
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<double> weights;
};

Taps bicubic_taps(int in_size, int out_size) {
  // PIL holds the box in floats; (in1 - in0) is float arithmetic, exact for these sizes.
  const float in0 = 0.0f, in1 = float(in_size);
  const double scale = double(in1 - in0) / out_size;
  // When shrinking, the filter is stretched over `scale` input samples: that is the antialiasing.
  const double filter_scale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filter_scale;
  Taps t;
  t.ksize = int(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(size_t(out_size) * t.ksize, 0.0);
  const double inv_filter_scale = 1.0 / filter_scale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &t.weights[size_t(xx) * t.ksize];
    double sum = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = bicubic((x + xmin - center + 0.5) * inv_filter_scale);
      k[x] = w;
      sum += w;
    }
    if (sum != 0.0)
      for (int x = 0; x < xmax; ++x) k[x] /= sum;
    t.first[xx] = xmin;
    t.count[xx] = xmax;
  }
  return t;
}

// ------------------------------------------------------------------ one output sample

// 8 bits: weights in fixed point with 22 fraction bits, leaving 8 bits for the value and 2 for
// the overshoot of the cubic's negative lobes.
constexpr int kPrecisionBits = 32 - 8 - 2;

std::vector<int32_t> fixed_point(const std::vector<double>& weights) {
  std::vector<int32_t> k(weights.size());
  for (size_t i = 0; i < weights.size(); ++i)
    k[i] = weights[i] < 0 ? int32_t(-0.5 + weights[i] * (1 << kPrecisionBits))
                          : int32_t(0.5 + weights[i] * (1 << kPrecisionBits));
  return k;
}

uint8_t filter_u8(const uint8_t* in, ptrdiff_t step, int count, const int32_t* k) {
  int32_t sum = 1 << (kPrecisionBits - 1);  // rounds the final shift to nearest
  for (int i = 0; i < count; ++i) sum += in[i * step] * k[i];
  return uint8_t(std::clamp(sum >> kPrecisionBits, 0, 255));
}

// 16 bits (PIL's "I;16"): weights stay doubles, the sum is rounded half away from zero.
std::vector<double> double_weights(const std::vector<double>& weights) { return weights; }

uint16_t filter_u16(const uint16_t* in, ptrdiff_t step, int count, const double* k) {
  double sum = 0.0;
  for (int i = 0; i < count; ++i) sum += in[i * step] * k[i];
  const int rounded = int(sum >= 0.0 ? sum + 0.5f : sum - 0.5f);
  return uint16_t(std::clamp(rounded, 0, 65535));
}

// ------------------------------------------------------------------ the two passes

// PIL's ImagingResampleInner: horizontal pass over the rows the vertical pass will read, then
// the vertical pass; a pass whose size does not change is skipped (its output would be the
// same samples).
template <class Sample, class Coef>
std::vector<Sample> resample_two_pass(
    const std::vector<Sample>& in, int in_w, int in_h, int channels, int out_w, int out_h,
    std::vector<Coef> (*coefficients)(const std::vector<double>&),
    Sample (*filter)(const Sample*, ptrdiff_t, int, const Coef*)) {
  const bool need_horizontal = out_w != in_w, need_vertical = out_h != in_h;
  const Taps vert = bicubic_taps(in_h, out_h);
  const int row_first = vert.first[0];
  const int row_last = vert.first[out_h - 1] + vert.count[out_h - 1];

  const std::vector<Sample>* src = &in;
  int src_row0 = 0;  // the input row that row 0 of *src holds
  int width = in_w;
  std::vector<Sample> horizontal;
  if (need_horizontal) {
    const Taps hor = bicubic_taps(in_w, out_w);
    const std::vector<Coef> k = coefficients(hor.weights);
    const int rows = row_last - row_first;
    horizontal.resize(size_t(rows) * out_w * channels);
    cpu::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const Sample* line = in.data() + (size_t(r + row_first) * in_w) * channels;
        Sample* out = horizontal.data() + size_t(r) * out_w * channels;
        for (int xx = 0; xx < out_w; ++xx)
          for (int c = 0; c < channels; ++c)
            out[size_t(xx) * channels + c] = filter(line + size_t(hor.first[xx]) * channels + c,
                                                    channels, hor.count[xx],
                                                    &k[size_t(xx) * hor.ksize]);
      }
    });
    src = &horizontal;
    src_row0 = row_first;
    width = out_w;
  }
  if (!need_vertical) return *src;

  const std::vector<Coef> k = coefficients(vert.weights);
  const size_t row_len = size_t(width) * channels;
  std::vector<Sample> out(size_t(out_h) * row_len);
  cpu::parallel_for(0, out_h, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t yy = y0; yy < y1; ++yy) {
      const Sample* column_top = src->data() + size_t(vert.first[yy] - src_row0) * row_len;
      for (size_t i = 0; i < row_len; ++i)
        out[size_t(yy) * row_len + i] = filter(column_top + i, ptrdiff_t(row_len), vert.count[yy],
                                               &k[size_t(yy) * vert.ksize]);
    }
  });
  return out;
}

// ------------------------------------------------------------------ nearest (P and "1")

// PIL's ImagingScaleAffine: the source position of output x is (x + 0.5) * in/out, summed step
// by step in doubles and truncated. Positions outside the source stay 0.
std::vector<int> nearest_positions(int in_size, int out_size) {
  const double step = double(float(in_size) - 0.0f) / out_size;
  std::vector<int> pos(out_size, -1);
  double at = step * 0.5;
  for (int x = 0; x < out_size; ++x) {
    const int p = at < 0.0 ? -1 : int(at);
    if (p >= 0 && p < in_size) pos[x] = p;
    at += step;
  }
  return pos;
}

DecodedImage resize_nearest(const DecodedImage& image, int width, int height) {
  const int ch = image.channels();
  const std::vector<int> xs = nearest_positions(image.width, width);
  const std::vector<int> ys = nearest_positions(image.height, height);
  DecodedImage out;
  out.width = width;
  out.height = height;
  out.mode = image.mode;
  out.pixels.assign(size_t(width) * height * ch, 0);
  for (int y = 0; y < height; ++y) {
    if (ys[y] < 0) continue;
    const uint8_t* line = image.pixels.data() + size_t(ys[y]) * image.width * ch;
    uint8_t* dst = out.pixels.data() + size_t(y) * width * ch;
    for (int x = 0; x < width; ++x)
      if (xs[x] >= 0) std::memcpy(dst + size_t(x) * ch, line + size_t(xs[x]) * ch, ch);
  }
  return out;
}

// ------------------------------------------------------------------ alpha

// PIL resizes LA and RGBA images as "La" and "RGBa": colors multiplied by alpha first, divided
// again after, so that transparent pixels do not bleed their color into visible ones.
uint8_t muldiv255(unsigned a, unsigned b) {
  const unsigned t = a * b + 128;
  return uint8_t(((t >> 8) + t) >> 8);
}

void premultiply(std::vector<uint8_t>& px, int channels) {
  for (size_t i = 0; i < px.size(); i += channels)
    for (int c = 0; c + 1 < channels; ++c) px[i + c] = muldiv255(px[i + c], px[i + channels - 1]);
}

void unpremultiply(std::vector<uint8_t>& px, int channels) {
  for (size_t i = 0; i < px.size(); i += channels) {
    const unsigned alpha = px[i + channels - 1];
    if (alpha == 255 || alpha == 0) continue;
    for (int c = 0; c + 1 < channels; ++c) px[i + c] = uint8_t(std::min(255u, 255u * px[i + c] / alpha));
  }
}

// ------------------------------------------------------------------ crop offsets

// torchvision's int(round(diff / 2.0)): Python rounds halves to even.
int half_rounded_to_even(int diff) {
  const int half = diff / 2;
  return (diff % 2 != 0 && half % 2 != 0) ? half + 1 : half;
}

}  // namespace

ImageSize shorter_side_size(int width, int height, int size) {
  SH_CHECK(size > 0, "resize: the size must be positive, got ", size);
  const int shorter = std::min(width, height), longer = std::max(width, height);
  const int new_long = int(double(int64_t(size) * longer) / shorter);
  return width <= height ? ImageSize{size, new_long} : ImageSize{new_long, size};
}

DecodedImage resize_bicubic(const DecodedImage& image, int width, int height) {
  SH_CHECK(width > 0 && height > 0, "resize: the size must be positive, got ", width, "x", height);
  SH_CHECK(image.width > 0 && image.height > 0, "resize: empty image");
  if (width == image.width && height == image.height) return image;

  switch (image.mode) {
    case ImageMode::P:
    case ImageMode::Bilevel:
      return resize_nearest(image, width, height);
    case ImageMode::I16: {
      DecodedImage out;
      out.width = width;
      out.height = height;
      out.mode = image.mode;
      out.pixels16 = resample_two_pass<uint16_t, double>(image.pixels16, image.width, image.height,
                                                         1, width, height, double_weights, filter_u16);
      return out;
    }
    default: break;
  }
  const bool has_alpha = image.mode == ImageMode::LA || image.mode == ImageMode::RGBA;
  const int ch = image.channels();
  DecodedImage out;
  out.width = width;
  out.height = height;
  out.mode = image.mode;
  if (has_alpha) {
    std::vector<uint8_t> premultiplied = image.pixels;
    premultiply(premultiplied, ch);
    out.pixels = resample_two_pass<uint8_t, int32_t>(premultiplied, image.width, image.height, ch,
                                                     width, height, fixed_point, filter_u8);
    unpremultiply(out.pixels, ch);
  } else {
    out.pixels = resample_two_pass<uint8_t, int32_t>(image.pixels, image.width, image.height, ch,
                                                     width, height, fixed_point, filter_u8);
  }
  return out;
}

DecodedImage resize_shorter_side(const DecodedImage& image, int size) {
  const ImageSize to = shorter_side_size(image.width, image.height, size);
  return resize_bicubic(image, to.width, to.height);
}

DecodedImage center_crop(const DecodedImage& image, int size) {
  SH_CHECK(size > 0 && size <= image.width && size <= image.height, "center_crop: a ", size, "x",
           size, " crop does not fit in a ", image.width, "x", image.height, " image");
  const int top = half_rounded_to_even(image.height - size);
  const int left = half_rounded_to_even(image.width - size);
  DecodedImage out;
  out.width = out.height = size;
  out.mode = image.mode;
  if (image.mode == ImageMode::I16) {
    out.pixels16.resize(size_t(size) * size);
    for (int y = 0; y < size; ++y)
      std::memcpy(&out.pixels16[size_t(y) * size], &image.pixels16[size_t(top + y) * image.width + left],
                  size * sizeof(uint16_t));
    return out;
  }
  const int ch = image.channels();
  out.pixels.resize(size_t(size) * size * ch);
  for (int y = 0; y < size; ++y)
    std::memcpy(&out.pixels[size_t(y) * size * ch],
                &image.pixels[(size_t(top + y) * image.width + left) * ch], size_t(size) * ch);
  return out;
}

namespace {

// PIL's CMYK -> RGB: each color is what is left of white under its ink and the black ink,
// (255 - K) - C * (255 - K) / 255, with PIL's rounded division by 255.
void cmyk_to_rgb(const uint8_t* cmyk, uint8_t* rgb) {
  const int white = 255 - cmyk[3];
  for (int c = 0; c < 3; ++c) {
    const int t = cmyk[c] * white + 128;
    rgb[c] = uint8_t(white - (((t >> 8) + t) >> 8));
  }
}

}  // namespace

DecodedImage convert_to_rgb(const DecodedImage& image) {
  if (image.mode == ImageMode::RGB) return image;
  const size_t n = size_t(image.width) * image.height;
  DecodedImage out;
  out.width = image.width;
  out.height = image.height;
  out.mode = ImageMode::RGB;
  out.pixels.resize(n * 3);
  uint8_t* dst = out.pixels.data();
  const uint8_t* src = image.pixels.data();
  for (size_t i = 0; i < n; ++i, dst += 3) {
    switch (image.mode) {
      case ImageMode::L:  // gray repeated; LA drops its alpha
      case ImageMode::LA: dst[0] = dst[1] = dst[2] = src[i * image.channels()]; break;
      case ImageMode::Bilevel: dst[0] = dst[1] = dst[2] = src[i] != 0 ? 255 : 0; break;
      case ImageMode::I16:  // PIL clips: anything from 256 up is white
        dst[0] = dst[1] = dst[2] = uint8_t(std::min<unsigned>(image.pixels16[i], 255));
        break;
      case ImageMode::RGBA: std::memcpy(dst, src + i * 4, 3); break;  // alpha dropped as is
      case ImageMode::P: std::memcpy(dst, src + i * 3, 3); break;     // palette applied at decoding
      case ImageMode::CMYK: cmyk_to_rgb(src + i * 4, dst); break;
      case ImageMode::RGB: break;
    }
  }
  return out;
}

namespace {

void check_config(const PreprocessConfig& config) {
  SH_CHECK(config.resize_size > 0 && config.crop_size > 0 &&
               config.crop_size <= config.resize_size,
           "preprocess: need 0 < crop_size <= resize_size, got resize_size ", config.resize_size,
           " and crop_size ", config.crop_size);
}

DecodedImage rgb_crop(const DecodedImage& image, const PreprocessConfig& config) {
  check_config(config);
  return convert_to_rgb(center_crop(resize_shorter_side(image, config.resize_size), config.crop_size));
}

// ToTensor then Normalize, in torchvision's float32 operations: v / 255, then (x - mean) / std.
void normalize_into(const uint8_t* rgb, int64_t pixels, const std::array<float, 3>& mean,
                    const std::array<float, 3>& std, float* out) {
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < pixels; ++i)
      out[c * pixels + i] = (float(rgb[i * 3 + c]) / 255.0f - mean[c]) / std[c];
}

}  // namespace

Tensor preprocess_u8(const DecodedImage& image, const PreprocessConfig& config) {
  const DecodedImage rgb = rgb_crop(image, config);
  Tensor out = Tensor::empty({rgb.height, rgb.width, 3}, DType::u8);
  std::memcpy(out.data<uint8_t>(), rgb.pixels.data(), rgb.pixels.size());
  return out;
}

Tensor normalize_rgb(const Tensor& rgb, const std::array<float, 3>& mean,
                     const std::array<float, 3>& std) {
  SH_CHECK(rgb.dtype() == DType::u8 && rgb.dim() == 3 && rgb.size(2) == 3,
           "normalize_rgb: expected a u8 [H, W, 3] tensor, got ", dtype_name(rgb.dtype()), " ",
           shape_str(rgb.shape()));
  const Tensor in = rgb.contiguous();
  Tensor out = Tensor::empty({3, in.size(0), in.size(1)}, DType::f32);
  normalize_into(in.data<uint8_t>(), in.size(0) * in.size(1), mean, std, out.data<float>());
  return out;
}

Tensor preprocess(const DecodedImage& image, const PreprocessConfig& config) {
  const DecodedImage rgb = rgb_crop(image, config);
  Tensor out = Tensor::empty({3, rgb.height, rgb.width}, DType::f32);
  normalize_into(rgb.pixels.data(), int64_t(rgb.width) * rgb.height, config.mean, config.std,
                 out.data<float>());
  return out;
}

Tensor preprocess_file(const std::string& path, const PreprocessConfig& config) {
  return preprocess(decode_image_file(path), config);
}

namespace {

// Fills [N, 3, crop, crop] with one image per index; `load` gives image i. Images are spread
// over the engine's threads (the resize passes inside then run serially).
template <class Load>
Tensor batch(int64_t n, const PreprocessConfig& config, const Load& load) {
  check_config(config);
  const int64_t side = config.crop_size, pixels = side * side;
  Tensor out = Tensor::empty({n, 3, side, side}, DType::f32);
  float* dst = out.data<float>();
  cpu::parallel_for(0, n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const DecodedImage rgb = rgb_crop(load(i), config);
      normalize_into(rgb.pixels.data(), pixels, config.mean, config.std, dst + i * 3 * pixels);
    }
  });
  return out;
}

}  // namespace

Tensor preprocess_batch(const std::vector<DecodedImage>& images, const PreprocessConfig& config) {
  return batch(int64_t(images.size()), config,
               [&](int64_t i) -> const DecodedImage& { return images[i]; });
}

Tensor preprocess_files(const std::vector<std::string>& paths, const PreprocessConfig& config) {
  return batch(int64_t(paths.size()), config,
               [&](int64_t i) { return decode_image_file(paths[i]); });
}

}  // namespace shallow
