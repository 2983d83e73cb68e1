#include "apps/decoding/checkpoint.h"

#include <filesystem>

#include "weights_import/safetensors.h"

namespace shallow::decoding {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* kMetadataKey = "shallow.checkpoint";
const char* kFormat = "shallow decoding checkpoint 1";

// Tensors of the state dicts under a prefix, as one map; copies detached from the module.
void add_prefixed(std::map<std::string, Tensor>& out, const std::string& prefix, const nn::StateDict& state) {
  for (auto& [name, t] : state) out[prefix + name] = t.detach();
}

nn::StateDict take_prefixed(const std::map<std::string, Tensor>& tensors, const std::string& prefix) {
  nn::StateDict out;
  for (auto& [name, t] : tensors)
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = t;
  return out;
}

}  // namespace

json to_json(const EpochLog& e) {
  json j = {{"epoch", e.epoch}, {"loss", e.loss}, {"lr", e.lr}, {"seconds", e.seconds}};
  if (e.val_loss >= 0) {
    j["val_loss"] = e.val_loss;
    j["val_top1"] = e.val_top1;
  }
  return j;
}

EpochLog epoch_log_from_json(const json& j) {
  EpochLog e;
  e.epoch = j.at("epoch").get<int64_t>();
  e.loss = j.at("loss").get<double>();
  e.lr = j.at("lr").get<double>();
  e.seconds = j.at("seconds").get<double>();
  if (j.contains("val_loss")) {
    e.val_loss = j.at("val_loss").get<double>();
    e.val_top1 = j.at("val_top1").get<double>();
  }
  return e;
}

std::string checkpoint_file(const std::string& path_or_dir) {
  if (fs::is_directory(path_or_dir)) return (fs::path(path_or_dir) / "checkpoint.safetensors").string();
  return path_or_dir;
}

void write_checkpoint(const std::string& path, const Checkpoint& c) {
  std::map<std::string, Tensor> tensors;
  add_prefixed(tensors, "model.", c.model);
  add_prefixed(tensors, "optimizer.", c.optimizer);
  if (!c.spec.zscore.empty()) {
    const int64_t C = int64_t(c.spec.zscore.mean.size());
    tensors["zscore.mean"] = Tensor::from_vector(c.spec.zscore.mean, {C});
    tensors["zscore.std"] = Tensor::from_vector(c.spec.zscore.std, {C});
  }
  json history = json::array();
  for (const EpochLog& e : c.history) history.push_back(to_json(e));
  const json meta = {{"format", kFormat},
                     {"model", c.spec.to_json()},
                     {"epoch", c.epoch},
                     {"rng", {{"seed", c.rng_seed}, {"offset", c.rng_offset}}},
                     {"training", c.training},
                     {"run", c.run},
                     {"history", history}};
  write_safetensors(path, tensors, {{kMetadataKey, meta.dump()}});
}

Checkpoint read_checkpoint(const std::string& path_or_dir) {
  const std::string path = checkpoint_file(path_or_dir);
  SH_CHECK(fs::is_regular_file(path), path, ": no such checkpoint");
  const SafetensorsFile file = read_safetensors(path);
  auto it = file.metadata.find(kMetadataKey);
  SH_CHECK(it != file.metadata.end(), path, ": not a training checkpoint of this program (no '",
           kMetadataKey, "' metadata)");
  Checkpoint c;
  try {
    const json meta = json::parse(it->second);
    SH_CHECK(meta.at("format") == kFormat, path, ": unknown checkpoint format ", meta.at("format").dump());
    c.spec = ModelSpec::from_json(meta.at("model"));
    c.epoch = meta.at("epoch").get<int64_t>();
    c.rng_seed = meta.at("rng").at("seed").get<uint64_t>();
    c.rng_offset = meta.at("rng").at("offset").get<uint64_t>();
    c.training = meta.at("training");
    c.run = meta.at("run");
    for (const json& e : meta.at("history")) c.history.push_back(epoch_log_from_json(e));
    if (meta.at("model").value("zscore", false)) {
      SH_CHECK(file.tensors.count("zscore.mean") && file.tensors.count("zscore.std"), path,
               ": the model z-scores its input but the statistics are missing");
      c.spec.zscore.mean = file.tensors.at("zscore.mean").to(DType::f32).to_vector<float>();
      c.spec.zscore.std = file.tensors.at("zscore.std").to(DType::f32).to_vector<float>();
      SH_CHECK(int64_t(c.spec.zscore.mean.size()) == c.spec.channels, path,
               ": z-score statistics for ", c.spec.zscore.mean.size(), " channels, model for ", c.spec.channels);
    }
  } catch (const json::exception& e) {
    throw Error(str_cat(path, ": malformed checkpoint description: ", e.what()));
  }
  c.model = take_prefixed(file.tensors, "model.");
  c.optimizer = take_prefixed(file.tensors, "optimizer.");
  return c;
}

}  // namespace shallow::decoding
