#pragma once
// safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range in the data section, then the data section.
//
// Reading maps the file and hands out tensors that point into it (no copy, no read until used)
// wherever the stored dtype is an engine dtype; I16, I8, U16, U32, U64 are widened (see
// elements.h) and BOOL reads as u8. Validation follows the format's reference implementation:
// the byte ranges must tile the data section exactly, with no gap, overlap or excess.
#include <map>
#include <string>

#include "engine/tensor.h"
#include "weights_import/file_bytes.h"
#include "weights_import/tensor_file.h"

namespace shallow {

using SafetensorsFile = TensorFile;

// Reads every tensor; throws shallow::Error naming the file and the problem on bad input.
SafetensorsFile read_safetensors(const std::string& path);
SafetensorsFile parse_safetensors(const FileBytes& bytes);

// Writes the tensors (any device, any layout) and the metadata. Data is laid out in order of
// decreasing element size, then name, so that every tensor is aligned to its element size.
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The format's own spelling of an engine dtype ("F32", "BF16", ...).
const char* safetensors_dtype_name(DType dtype);

}  // namespace shallow
