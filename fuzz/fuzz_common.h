#pragma once
// Shared by the fuzz targets: wrap the input, and read every element of every tensor a reader
// returns, so that a tensor pointing outside its bytes shows up under AddressSanitizer.
#include <cstdint>
#include <vector>

#include "weights_import/file_bytes.h"
#include "weights_import/tensor_file.h"

namespace shallow::fuzz {

inline FileBytes input(const uint8_t* data, size_t size) {
  return bytes_in_memory(std::vector<uint8_t>(data, data + size), "fuzz-input");
}

inline void touch(const TensorFile& f) {
  volatile double sink = 0;
  for (auto& [name, t] : f.tensors) {
    for (double v : t.to_vector<double>()) sink = sink + v;
  }
  (void)sink;
}

}  // namespace shallow::fuzz
