#include "models/jpeg.h"

#include <csetjmp>
#include <cstdio>  // snprintf; and jpeglib.h uses FILE without declaring it

#include <jpeglib.h>
#include <jerror.h>

#include "engine/error.h"

namespace shallow {
namespace {

// libjpeg reports a fatal error by calling error_exit, whose default ends the process. Ours keeps
// the message and longjmps back to the setjmp of read_header or read_pixels. Only libjpeg's C
// frames lie in between, so no C++ destructor is skipped; the decompressor itself is owned by a
// Decompressor further up, which frees it however decoding ends.
struct JumpingErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg's pointer to it is a pointer to the whole
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jump_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JumpingErrorManager*>(cinfo->err);
  cinfo->err->format_message(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (level -1) are about damage libjpeg recovers from, and PIL ignores them, except one:
// PIL fails whenever the data runs out, where libjpeg's memory source pads the data and warns.
// Trace messages (levels above 0) are dropped, as PIL drops them.
void ignore_warnings_but_eof(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jump_on_error(cinfo);
}

struct Decompressor {
  jpeg_decompress_struct cinfo{};
  JumpingErrorManager err{};

  Decompressor() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jump_on_error;
    err.pub.emit_message = ignore_warnings_but_eof;
  }
  // Frees everything libjpeg allocated; a no-op if jpeg_create_decompress never ran or failed.
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
};

// Each returns false, with libjpeg's message in d.err.message, when libjpeg fails. Nothing in
// them has a destructor, and nothing they change is read after a longjmp.
bool read_header(Decompressor& d, const uint8_t* data, size_t size) {
  if (setjmp(d.err.jump)) return false;
  jpeg_create_decompress(&d.cinfo);
  jpeg_mem_src(&d.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&d.cinfo, TRUE);
  return true;
}

// Decodes into `pixels`, which has room for `capacity` samples.
bool read_pixels(Decompressor& d, J_COLOR_SPACE color_space, uint8_t* pixels, size_t capacity) {
  if (setjmp(d.err.jump)) return false;
  jpeg_decompress_struct& c = d.cinfo;
  // PIL's choices, which are also libjpeg's defaults: said here so that a change of defaults
  // cannot move a pixel.
  c.out_color_space = color_space;
  c.dct_method = JDCT_ISLOW;
  c.do_fancy_upsampling = TRUE;
  c.scale_num = c.scale_denom = 1;
  jpeg_start_decompress(&c);
  const size_t stride = size_t(c.output_width) * c.output_components;
  if (stride * c.output_height != capacity) {  // cannot happen at scale 1: checked, not trusted
    std::snprintf(d.err.message, sizeof d.err.message, "%ux%ux%d output samples, expected %zu",
                  c.output_width, c.output_height, c.output_components, capacity);
    return false;
  }
  while (c.output_scanline < c.output_height) {
    JSAMPROW row = pixels + size_t(c.output_scanline) * stride;
    jpeg_read_scanlines(&c, &row, 1);
  }
  jpeg_finish_decompress(&c);  // reads up to the EOI marker: a file without one fails, as in PIL
  return true;
}

}  // namespace

bool is_jpeg(const uint8_t* data, size_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

DecodedImage decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  Decompressor d;
  const auto libjpeg_error = [&] {
    return Error(str_cat(name, ": cannot decode image: ", d.err.message, " (libjpeg)"));
  };
  if (!read_header(d, data, size)) throw libjpeg_error();

  const int components = d.cinfo.num_components;
  SH_CHECK(components == 1 || components == 3 || components == 4, name,
           ": cannot decode image: a JPEG with ",
           components, " components (PIL opens those with 1, 3 or 4)");
  const int width = int(d.cinfo.image_width), height = int(d.cinfo.image_height);
  SH_CHECK(int64_t(width) * height <= kMaxImagePixels, name, ": image too large (", width, "x",
           height, " pixels, the limit is ", kMaxImagePixels, ")");

  DecodedImage image;
  image.width = width;
  image.height = height;
  image.mode = components == 1 ? ImageMode::L : components == 3 ? ImageMode::RGB : ImageMode::CMYK;
  const J_COLOR_SPACE space =
      components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
  image.pixels.resize(size_t(width) * height * components);
  if (!read_pixels(d, space, image.pixels.data(), image.pixels.size()))
    throw libjpeg_error();
  if (image.mode == ImageMode::CMYK)
    for (uint8_t& sample : image.pixels) sample = uint8_t(255 - sample);
  return image;
}

}  // namespace shallow
