#pragma once
// JPEG files -> pixels, decoded by libjpeg-turbo with the settings PIL's JPEG plugin uses (PIL
// itself decodes with libjpeg-turbo): the accurate integer IDCT, "fancy" (triangle-filter)
// chroma upsampling, YCbCr converted to RGB by the library. So our pixels are PIL's, exactly;
// stb_image's decoder rounds differently and lands up to 3 levels away.
//
// Modes as PIL opens them: one component is "L", three are "RGB", four (CMYK, or YCCK that the
// library turns into CMYK) are "CMYK", with the samples inverted as PIL does for every CMYK JPEG
// (it assumes Adobe's convention, where the file stores 255 - ink).
#include <cstddef>
#include <cstdint>
#include <string>

#include "models/image.h"

namespace shallow {

// Whether the bytes start as PIL requires of a JPEG (the SOI marker and the next marker's 0xFF).
bool is_jpeg(const uint8_t* data, size_t size);

// Decodes a JPEG held in memory. A truncated or corrupt file throws shallow::Error
// "<name>: cannot decode image: <libjpeg's message> (libjpeg)". As in PIL, running out of data
// anywhere (even just before the final EOI marker) is an error, while the recoverable damage that
// libjpeg only warns about is not.
DecodedImage decode_jpeg(const uint8_t* data, size_t size, const std::string& name);

}  // namespace shallow
