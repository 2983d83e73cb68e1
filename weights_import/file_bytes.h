#pragma once
// The bytes of a file (or of one entry inside an archive), memory-mapped where possible.
// Tensors read without conversion point straight into these bytes and keep `owner` alive, so a
// file opens without reading it and only the pages a program touches are ever loaded.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace shallow {

struct FileBytes {
  std::string name;            // the file, or "file: entry", for error messages
  uint8_t* data = nullptr;     // treat as read-only: writes land in a private copy-on-write page
  size_t size = 0;
  std::shared_ptr<void> owner;  // unmaps (or frees) when the last user is gone

  // The bytes [offset, offset + length), sharing the owner; throws if they leave this span.
  FileBytes slice(size_t offset, size_t length, const std::string& slice_name) const;
};

// Maps the whole file privately (pages are read on first touch, writes never reach the file).
FileBytes map_file(const std::string& path);

// Wraps bytes that live in memory (inflated archive entries, fuzzer inputs, tests).
FileBytes bytes_in_memory(std::vector<uint8_t> data, const std::string& name);

}  // namespace shallow
