#include "models/image.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <stb_image.h>  // Debian's libstb: declarations only, the code is in the library

#include "engine/error.h"
#include "models/jpeg.h"

namespace shallow {

const char* mode_name(ImageMode mode) {
  switch (mode) {
    case ImageMode::L: return "L";
    case ImageMode::LA: return "LA";
    case ImageMode::RGB: return "RGB";
    case ImageMode::RGBA: return "RGBA";
    case ImageMode::P: return "P";
    case ImageMode::Bilevel: return "1";
    case ImageMode::I16: return "I;16";
    case ImageMode::CMYK: return "CMYK";
  }
  return "?";
}

int mode_channels(ImageMode mode) {
  switch (mode) {
    case ImageMode::L: return 1;
    case ImageMode::LA: return 2;
    case ImageMode::RGB: return 3;
    case ImageMode::RGBA: return 4;
    case ImageMode::P: return 3;
    case ImageMode::Bilevel: return 1;
    case ImageMode::I16: return 1;
    case ImageMode::CMYK: return 4;
  }
  return 0;
}

namespace {

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

// PIL's mode for a PNG, from the bit depth and color type of its IHDR chunk (PngImagePlugin's
// table). Returns false when the header is not where the PNG standard puts it.
bool png_mode(const uint8_t* data, size_t size, ImageMode* mode) {
  if (size < 26 || std::memcmp(data + 12, "IHDR", 4) != 0) return false;
  const int depth = data[24], color_type = data[25];
  switch (color_type) {
    case 0:  // gray: 1 bit is PIL's "1", 16 bits its "I;16"; tRNS does not add an alpha band
      *mode = depth == 1 ? ImageMode::Bilevel : depth == 16 ? ImageMode::I16 : ImageMode::L;
      return true;
    case 2: *mode = ImageMode::RGB; return true;  // 16 bits: PIL keeps the high byte, as stb does
    case 3: *mode = ImageMode::P; return true;
    case 4:  // PIL opens 16-bit gray+alpha as RGBA (the gray repeated), 8-bit as LA
      *mode = depth == 16 ? ImageMode::RGBA : ImageMode::LA;
      return true;
    case 6: *mode = ImageMode::RGBA; return true;
    default: return false;
  }
}

// Bits per pixel of a BMP (0 when the header is not one we know).
int bmp_bits_per_pixel(const uint8_t* data, size_t size) {
  if (size < 30) return 0;
  const uint32_t header = data[14] | data[15] << 8 | data[16] << 16 | uint32_t(data[17]) << 24;
  const size_t at = header == 12 ? 24 : 28;  // OS/2 core header, or BITMAPINFOHEADER and later
  return data[at] | data[at + 1] << 8;
}

ImageMode mode_from_channels(int channels) {
  switch (channels) {
    case 1: return ImageMode::L;
    case 2: return ImageMode::LA;
    case 4: return ImageMode::RGBA;
    default: return ImageMode::RGB;
  }
}

// The mode PIL would open these bytes in; `channels` is what stb reports.
ImageMode pil_mode(const uint8_t* data, size_t size, int channels) {
  ImageMode mode;
  if (starts_with(data, size, "\x89PNG\r\n\x1a\n", 8) && png_mode(data, size, &mode)) return mode;
  if (starts_with(data, size, "GIF8", 4)) return ImageMode::P;
  if (starts_with(data, size, "BM", 2)) {
    const int bits = bmp_bits_per_pixel(data, size);
    if (bits > 0 && bits <= 8) return ImageMode::P;
  }
  return mode_from_channels(channels);
}

std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown reason";
}

}  // namespace

DecodedImage decode_image_memory(const uint8_t* data, size_t size, const std::string& name) {
  SH_CHECK(size > 0, name, ": cannot decode image: the file is empty");
  if (is_jpeg(data, size)) return decode_jpeg(data, size, name);
  SH_CHECK(size <= size_t(INT_MAX), name, ": cannot decode image: file too large (", size,
           " bytes)");
  const int length = int(size);

  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(data, length, &width, &height, &channels))
    throw Error(str_cat(name, ": cannot decode image: ", stb_reason(), " (stb_image)"));
  SH_CHECK(int64_t(width) * height <= kMaxImagePixels, name, ": image too large (", width, "x",
           height, " pixels, the limit is ", kMaxImagePixels, ")");

  DecodedImage image;
  image.mode = pil_mode(data, size, channels);
  const int wanted = image.channels();
  int w = 0, h = 0, found = 0;
  if (image.mode == ImageMode::I16) {
    stbi_us* samples = stbi_load_16_from_memory(data, length, &w, &h, &found, wanted);
    if (!samples)
      throw Error(str_cat(name, ": cannot decode image: ", stb_reason(), " (stb_image)"));
    image.pixels16.assign(samples, samples + size_t(w) * h);
    stbi_image_free(samples);
  } else {
    // stb converts to the channel count asked for: it drops alpha added by a tRNS chunk,
    // applies palettes, and keeps the high byte of 16-bit samples as PIL does.
    stbi_uc* samples = stbi_load_from_memory(data, length, &w, &h, &found, wanted);
    if (!samples)
      throw Error(str_cat(name, ": cannot decode image: ", stb_reason(), " (stb_image)"));
    image.pixels.assign(samples, samples + size_t(w) * h * wanted);
    stbi_image_free(samples);
  }
  image.width = w;
  image.height = h;
  return image;
}

DecodedImage decode_image_file(const std::string& path) {
  std::error_code ec;
  SH_CHECK(!std::filesystem::is_directory(path, ec), path, ": cannot open image: it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(str_cat(path, ": cannot open image: ", std::strerror(errno)));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SH_CHECK(!in.bad(), path, ": cannot read image: ", std::strerror(errno));
  return decode_image_memory(bytes.data(), bytes.size(), path);
}

}  // namespace shallow
