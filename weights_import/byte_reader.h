#pragma once
// A cursor over untrusted bytes: every read is bounds-checked and a short read throws
// shallow::Error naming the source, the offset and what was being read.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "engine/error.h"

namespace shallow {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string name)
      : data_(data), size_(size), name_(std::move(name)) {}

  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos_; }
  bool at_end() const { return pos_ == size_; }
  const std::string& name() const { return name_; }
  const uint8_t* data() const { return data_; }

  void seek(size_t pos, const char* what) {
    SH_CHECK(pos <= size_, name_, ": ", what, " at offset ", pos, " is past the end (", size_, " bytes)");
    pos_ = pos;
  }
  // The next n bytes; throws if fewer remain.
  const uint8_t* take(size_t n, const char* what) {
    SH_CHECK(n <= remaining(), name_, ": truncated: ", what, " needs ", n, " bytes at offset ", pos_,
             " but only ", remaining(), " remain");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8(const char* what) { return *take(1, what); }
  uint16_t u16(const char* what) { return uint16_t(little_endian(take(2, what), 2)); }
  uint32_t u32(const char* what) { return uint32_t(little_endian(take(4, what), 4)); }
  uint64_t u64(const char* what) { return little_endian(take(8, what), 8); }

  static uint64_t little_endian(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string name_;
};

}  // namespace shallow
