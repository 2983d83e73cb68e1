#pragma once
// Zip archives, as torch.save and np.savez write them: reading of stored and deflated entries
// (zip64 included) through the central directory, and writing of stored entries.
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

#include "weights_import/file_bytes.h"
#include "weights_import/file_writer.h"

namespace shallow {

class ZipReader {
 public:
  struct Entry {
    std::string name;
    uint16_t method = 0;  // 0 stored, 8 deflated
    uint32_t crc32 = 0;
    uint64_t compressed_size = 0;
    uint64_t size = 0;
    uint64_t data_offset = 0;  // where the entry's (compressed) bytes start in the archive
  };

  // Reads the central directory and checks that every entry lies inside the archive.
  explicit ZipReader(FileBytes archive);

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& name) const;  // nullptr when absent
  // The entry's bytes: a slice of the archive when stored, inflated (and checked against its
  // CRC) when deflated.
  FileBytes read(const Entry& e) const;
  const std::string& name() const { return archive_.name; }

  // True when the bytes start like a zip archive.
  static bool looks_like_zip(const uint8_t* data, size_t size);

 private:
  FileBytes archive_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> entry (the last one, as Python's zipfile)
};

// Writes stored (uncompressed) entries, with zip64 records where sizes or offsets need them.
class ZipWriter {
 public:
  explicit ZipWriter(const std::string& path) : out_(path), path_(path) {}
  // One entry whose content is the concatenation of the parts.
  struct Part {
    const void* data;
    size_t size;
  };
  void add(const std::string& name, const std::vector<Part>& parts);
  void finish();  // writes the central directory and puts the file in place

 private:
  struct Written {
    std::string name;
    uint32_t crc32;
    uint64_t size, offset;
  };
  FileWriter out_;
  std::string path_;
  std::vector<Written> written_;
};

}  // namespace shallow
