#pragma once
// The common result of every reader: named tensors, plus what the file says about them.
#include <map>
#include <memory>
#include <string>

#include "engine/tensor.h"

namespace shallow {

namespace pickle {
class Pickle;
}

struct TensorFile {
  std::string path;
  std::string format;  // "safetensors", "pytorch zip", "pytorch legacy", "npy", "npz", "pickle"
  // Every tensor by name; nested dicts and lists are flattened with dotted names ("a.b.0").
  std::map<std::string, Tensor> tensors;
  // Text the file holds beside its tensors: safetensors' __metadata__, and a checkpoint's or
  // NumPy dict's numbers, strings and lists of them (as JSON text).
  std::map<std::string, std::string> metadata;
  // How the file stores each tensor's elements where the engine reads them as another dtype
  // ("i16" read as i32, a big-endian ">f4" byte-swapped, ...); absent when read as stored.
  std::map<std::string, std::string> stored_dtypes;
  // For a pickled object (np.save of a dict, a bare pickle): the object itself, arrays and
  // tensors included, for callers that need its structure.
  std::shared_ptr<const pickle::Pickle> object;
};

// Reads any supported file, recognized by its content (not its name): safetensors, a PyTorch
// checkpoint (zip or legacy), .npy (numbers or a pickled object), .npz, or a bare pickle.
TensorFile read_tensor_file(const std::string& path);

// Writes the tensors as .safetensors, or as .npz when the path ends in ".npz". bf16 tensors
// become f32 in .npz (NumPy has no bfloat16).
void write_tensor_file(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The names under which the model's own weights lie in a checkpoint that wraps them
// ({"state_dict": ...}, {"model": ...}, DataParallel's "module."): the prefix to strip, or ""
// when the tensors are at the top.
std::string state_dict_prefix(const std::map<std::string, Tensor>& tensors);

}  // namespace shallow
