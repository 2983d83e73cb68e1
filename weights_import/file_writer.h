#pragma once
// Writes a file under a temporary name and renames it into place when complete, so that a
// failed or interrupted write never leaves a half-written file under the final name.
#include <cstdint>
#include <cstdio>
#include <string>

namespace shallow {

class FileWriter {
 public:
  explicit FileWriter(const std::string& path);
  ~FileWriter();  // removes the temporary file unless commit() succeeded
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  uint64_t written() const { return written_; }
  void commit();  // flushes, closes and renames; throws on any error

 private:
  std::string path_, temp_path_;
  std::FILE* file_ = nullptr;
  uint64_t written_ = 0;
};

}  // namespace shallow
