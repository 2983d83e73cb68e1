#include "weights_import/file_bytes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace shallow {

FileBytes FileBytes::slice(size_t offset, size_t length, const std::string& slice_name) const {
  SH_CHECK(offset <= size && length <= size - offset, slice_name, ": bytes [", offset, ", +", length,
           ") lie outside the ", size, " bytes of ", name);
  return FileBytes{slice_name, data + offset, length, owner};
}

namespace {

struct Mapping {
  void* address = nullptr;
  size_t length = 0;
  ~Mapping() {
    if (address) munmap(address, length);
  }
};

}  // namespace

FileBytes map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  SH_CHECK(fd >= 0, path, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const bool is_dir = S_ISDIR(st.st_mode);
    ::close(fd);
    throw Error(path + (is_dir ? ": is a directory, not a file" : ": is not a regular file"));
  }
  auto mapping = std::make_shared<Mapping>();
  if (st.st_size > 0) {
    // Private and writable: tensors that point into the file may be modified in place
    // (an optimizer step on loaded weights) without touching the file.
    void* p = ::mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error(path + ": cannot map the file into memory (" + std::strerror(err) + ")");
    }
    mapping->address = p;
    mapping->length = size_t(st.st_size);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return FileBytes{path, static_cast<uint8_t*>(mapping->address), mapping->length, mapping};
}

FileBytes bytes_in_memory(std::vector<uint8_t> data, const std::string& name) {
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(data));
  return FileBytes{name, owned->data(), owned->size(), owned};
}

}  // namespace shallow
