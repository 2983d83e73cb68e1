// Fuzzes the config.json reader.
#include <string>

#include "weights_import/config.h"
#include "engine/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    shallow::parse_vision_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz-input");
  } catch (const shallow::Error&) {
  }
  return 0;
}
