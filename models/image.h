#pragma once
// Image files -> pixels: JPEGs decoded by libjpeg-turbo as PIL decodes them (models/jpeg.h),
// every other format by stb_image.
//
// The pixels keep the mode PIL would open the file in, because the preprocessing that must match
// OpenCLIP's (models/preprocess.h) treats modes differently: PIL resizes palette and bilevel
// images by nearest neighbour, alpha images in premultiplied form, 16-bit grayscale in 16 bits,
// and only then converts to RGB.
//
// Modes are exact for PNG (read from its header) and JPEG (L, RGB, or CMYK for four components).
// GIF and 8-bit-or-less BMP open as PIL's "P"; other formats get the mode that their channel
// count suggests.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shallow {

enum class ImageMode {
  L,        // 8-bit gray
  LA,       // 8-bit gray + alpha
  RGB,      // 8-bit color
  RGBA,     // 8-bit color + alpha
  P,        // palette; stored with the palette already applied (3 samples a pixel)
  Bilevel,  // PIL's "1": 1-bit gray, stored as 0 or 255
  I16,      // PIL's "I;16": 16-bit gray, stored in `pixels16`
  CMYK,     // 8-bit ink coverage (0 = no ink), as PIL holds a CMYK JPEG
};

const char* mode_name(ImageMode mode);  // PIL's name: "L", "LA", "RGB", "RGBA", "P", "1", "I;16",
                                        // "CMYK"
int mode_channels(ImageMode mode);      // samples per pixel as stored here (P: 3)

struct DecodedImage {
  int width = 0;
  int height = 0;
  ImageMode mode = ImageMode::RGB;
  std::vector<uint8_t> pixels;     // every mode but I16: rows top to bottom, samples interleaved
  std::vector<uint16_t> pixels16;  // I16 only: one sample per pixel

  int channels() const { return mode_channels(mode); }
};

// PIL refuses images above this many pixels (its decompression-bomb limit); so do we.
constexpr int64_t kMaxImagePixels = 178956970;

// Decodes a file. A missing, unreadable, truncated or oversized image throws shallow::Error
// naming the file and the reason (libjpeg's or stb_image's own words where they refused it).
DecodedImage decode_image_file(const std::string& path);
// The same for bytes already in memory; `name` is used in error messages.
DecodedImage decode_image_memory(const uint8_t* data, size_t size, const std::string& name);

}  // namespace shallow
