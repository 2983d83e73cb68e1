#include "weights_import/file_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace shallow {

FileWriter::FileWriter(const std::string& path)
    : path_(path), temp_path_(path + ".partial-" + std::to_string(::getpid())) {
  file_ = std::fopen(temp_path_.c_str(), "wb");
  SH_CHECK(file_ != nullptr, path, ": cannot create (", std::strerror(errno), ")");
}

FileWriter::~FileWriter() {
  if (file_) {
    std::fclose(file_);
    std::remove(temp_path_.c_str());
  }
}

void FileWriter::write(const void* data, size_t n) {
  SH_CHECK(file_ != nullptr, path_, ": write after commit");
  if (n == 0) return;
  SH_CHECK(std::fwrite(data, 1, n, file_) == n, path_, ": write failed (", std::strerror(errno), ")");
  written_ += n;
}

void FileWriter::commit() {
  SH_CHECK(file_ != nullptr, path_, ": committed twice");
  const bool flushed = std::fflush(file_) == 0;
  const int err = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    std::remove(temp_path_.c_str());
    throw Error(path_ + ": write failed (" + std::strerror(err) + ")");
  }
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    std::remove(temp_path_.c_str());
    throw Error(path_ + ": cannot rename the finished file into place (" + std::strerror(e) + ")");
  }
}

}  // namespace shallow
