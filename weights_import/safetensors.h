#pragma once
// safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw data.
#include <map>
#include <string>

#include "engine/tensor.h"

namespace shallow {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // the header's __metadata__
};

// Reads every tensor; throws shallow::Error naming the file and the problem on bad input.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace shallow
