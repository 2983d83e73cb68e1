#include "weights_import/tensor_file.h"

#include <algorithm>
#include <cstring>

#include "weights_import/numpy.h"
#include "weights_import/safetensors.h"
#include "weights_import/torch_checkpoint.h"
#include "weights_import/zip.h"

namespace shallow {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A safetensors file starts with a little-endian header length, then '{'.
bool looks_like_safetensors(const FileBytes& b) {
  if (b.size < 9 || b.data[8] != '{') return false;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b.data[i];
  return n <= b.size - 8;
}

std::string stem_of(const std::string& path) {
  std::string stem = path.substr(path.find_last_of('/') + 1);
  const size_t dot = stem.rfind('.');
  return dot != std::string::npos && dot > 0 ? stem.substr(0, dot) : stem;
}

}  // namespace

TensorFile read_tensor_file(const std::string& path) {
  const FileBytes bytes = map_file(path);
  if (ZipReader::looks_like_zip(bytes.data, bytes.size)) {
    // Both PyTorch checkpoints and .npz files are zip archives: a checkpoint has data.pkl.
    ZipReader zip(bytes);
    for (const auto& e : zip.entries())
      if (ends_with(e.name, "/data.pkl")) return parse_torch_checkpoint(bytes);
    return parse_npz(bytes);
  }
  if (looks_like_npy(bytes.data, bytes.size)) return parse_npy(bytes, stem_of(path));
  if (looks_like_legacy_torch(bytes.data, bytes.size)) return parse_torch_checkpoint(bytes);
  if (bytes.size > 0 && bytes.data[0] == 0x80) return parse_npy(bytes, stem_of(path));  // a bare pickle
  if (looks_like_safetensors(bytes)) return parse_safetensors(bytes);
  throw Error(path + ": unrecognized file format (expected safetensors, a PyTorch checkpoint, .npy, .npz or a pickle)");
}

void write_tensor_file(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  if (ends_with(path, ".npz")) {
    std::map<std::string, Tensor> widened;
    for (auto& [name, t] : tensors) widened[name] = t.dtype() == DType::bf16 ? t.to(DType::f32) : t;
    write_npz(path, widened);
    return;
  }
  write_safetensors(path, tensors, metadata);
}

std::string state_dict_prefix(const std::map<std::string, Tensor>& tensors) {
  static const char* kWrappers[] = {"state_dict.", "model_state_dict.", "model.", "module.", "state_dict_ema.",
                                    "model_ema."};
  // What a training checkpoint keeps beside the weights.
  static const char* kTrainingState[] = {"optimizer.", "optimizer_state_dict.", "scheduler.", "lr_scheduler.",
                                         "scaler.", "grad_scaler."};
  const auto starts = [](const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; };
  const auto count_under = [&](const std::string& p) {
    size_t n = 0;
    for (auto& [name, _] : tensors) n += starts(name, p);
    return n;
  };
  const auto training_state = [&](const std::string& name) {
    for (const char* t : kTrainingState)
      if (starts(name, t)) return true;
    return false;
  };
  std::string prefix;
  for (bool changed = true; changed;) {
    changed = false;
    const size_t here = count_under(prefix);
    for (const char* wrapper : kWrappers) {
      const std::string candidate = prefix + wrapper;
      const size_t under = count_under(candidate);
      bool take = under > 0 && under == here;
      if (!take && under > 0 && prefix.empty()) {
        // At the top: "state_dict" says what it holds; another wrapper is taken when the
        // tensors beside it are only training state.
        const bool names_weights = candidate == "state_dict." || candidate == "model_state_dict.";
        take = names_weights || std::all_of(tensors.begin(), tensors.end(), [&](const auto& kv) {
                 return starts(kv.first, candidate) || training_state(kv.first);
               });
      }
      if (take) {
        prefix = candidate;
        changed = true;
        break;
      }
    }
  }
  return prefix;
}

}  // namespace shallow
