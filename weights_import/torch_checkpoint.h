#pragma once
// PyTorch checkpoints, as torch.save writes them:
//   - the zip format (PyTorch 1.6 and later): <name>/data.pkl holds the pickled object, each
//     storage is the entry <name>/data/<key>, and <name>/byteorder says the byte order;
//   - the legacy format: a magic number, a protocol version and system information, each
//     pickled, then the pickled object, the pickled list of storage keys, and for each key
//     an 8-byte element count followed by the storage's raw bytes.
// The object's tensors are rebuilt from torch._utils._rebuild_tensor_v2 and friends, with
// their storage offsets and strides; tensors sharing a storage share it here too. Storages of
// zip checkpoints are used in place from the memory-mapped file. Nested dicts and lists are
// flattened with dotted names. Nothing in the pickle is executed: an unknown global is an
// error naming it.
#include <string>

#include "weights_import/file_bytes.h"
#include "weights_import/tensor_file.h"

namespace shallow {

TensorFile read_torch_checkpoint(const std::string& path);
TensorFile parse_torch_checkpoint(const FileBytes& bytes);

// True when the bytes start like a legacy (non-zip) torch.save file.
bool looks_like_legacy_torch(const uint8_t* data, size_t size);

}  // namespace shallow
