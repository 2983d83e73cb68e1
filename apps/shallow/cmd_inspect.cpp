// shallow inspect FILE [--json]: every tensor of a weights or NumPy file (name, dtype, shape,
// bytes), the file's metadata, and for a pickled NumPy dict its keys and what each holds.
#include <iomanip>
#include <memory>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "apps/shallow/commands.h"
#include "weights_import/name_maps/architecture.h"
#include "weights_import/pickle.h"
#include "weights_import/tensor_file.h"

namespace shallow::cli {
namespace {

struct InspectOptions {
  std::string file;
  bool json = false;
};

// The vision model the tensors hold, described, or "" when they are no model this project knows.
std::string detected_model(const TensorFile& f) {
  if (f.tensors.empty()) return "";
  try {
    return name_maps::detect_architecture(f.tensors).describe();
  } catch (const Error&) {
    return "";
  }
}

int64_t tensor_bytes(const Tensor& t) { return t.numel() * int64_t(dtype_size(t.dtype())); }

std::string human_bytes(int64_t n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream s;
  s << std::setprecision(u == 0 ? 0 : 1) << std::fixed << v << " " << units[u];
  return s.str();
}

std::string dtype_text(const TensorFile& f, const std::string& name, const Tensor& t) {
  auto it = f.stored_dtypes.find(name);
  return it == f.stored_dtypes.end() ? dtype_name(t.dtype())
                                     : std::string(dtype_name(t.dtype())) + " (stored " + it->second + ")";
}

// The top-level keys of a pickled dict, each with a short description of its value.
std::vector<std::pair<std::string, std::string>> dict_keys(const TensorFile& f) {
  std::vector<std::pair<std::string, std::string>> keys;
  if (!f.object || !f.object->root()->is(pickle::Kind::dict)) return keys;
  for (auto& [k, v] : f.object->root()->entries) {
    const std::string key = k->is(pickle::Kind::string) ? k->text : k->describe();
    std::string what = v->describe();
    if (v->is(pickle::Kind::list) || v->is(pickle::Kind::tuple)) {
      // A list of strings (channel names): show its start.
      std::string preview;
      for (size_t i = 0; i < v->items.size() && i < 5; ++i)
        if (v->items[i]->is(pickle::Kind::string)) preview += (i ? ", " : "") + v->items[i]->text;
      if (!preview.empty()) what += ": " + preview + (v->items.size() > 5 ? ", ..." : "");
    }
    keys.emplace_back(key, what);
  }
  return keys;
}

void print_text(const TensorFile& f, std::ostream& out) {
  int64_t total = 0;
  for (auto& [name, t] : f.tensors) total += tensor_bytes(t);
  out << f.path << ": " << f.format << ", " << f.tensors.size() << " tensor" << (f.tensors.size() == 1 ? "" : "s")
      << ", " << human_bytes(total) << "\n";
  const std::string prefix = state_dict_prefix(f.tensors);
  if (!prefix.empty()) out << "model weights under '" << prefix << "'\n";
  if (const std::string model = detected_model(f); !model.empty()) out << "model: " << model << "\n";

  const auto keys = dict_keys(f);
  if (!keys.empty()) {
    out << "\ndict keys:\n";
    for (auto& [k, what] : keys) out << "  " << k << ": " << what << "\n";
  }

  if (!f.tensors.empty()) {
    size_t name_w = 4, dtype_w = 5, shape_w = 5;
    for (auto& [name, t] : f.tensors) {
      name_w = std::max(name_w, name.size());
      dtype_w = std::max(dtype_w, dtype_text(f, name, t).size());
      shape_w = std::max(shape_w, shape_str(t.shape()).size());
    }
    out << "\n" << std::left << std::setw(int(name_w)) << "name" << "  " << std::setw(int(dtype_w)) << "dtype"
        << "  " << std::setw(int(shape_w)) << "shape" << "  bytes\n";
    for (auto& [name, t] : f.tensors)
      out << std::left << std::setw(int(name_w)) << name << "  " << std::setw(int(dtype_w)) << dtype_text(f, name, t)
          << "  " << std::setw(int(shape_w)) << shape_str(t.shape()) << "  " << tensor_bytes(t) << "\n";
  }
  if (!f.metadata.empty()) {
    out << "\nmetadata:\n";
    for (auto& [k, v] : f.metadata) out << "  " << k << ": " << (v.size() > 200 ? v.substr(0, 200) + "..." : v) << "\n";
  }
}

void print_json(const TensorFile& f, std::ostream& out) {
  nlohmann::ordered_json j;
  j["file"] = f.path;
  j["format"] = f.format;
  int64_t total = 0;
  auto tensors = nlohmann::ordered_json::array();
  for (auto& [name, t] : f.tensors) {
    nlohmann::ordered_json e;
    e["name"] = name;
    e["dtype"] = dtype_name(t.dtype());
    if (auto it = f.stored_dtypes.find(name); it != f.stored_dtypes.end()) e["stored_dtype"] = it->second;
    e["shape"] = t.shape();
    e["bytes"] = tensor_bytes(t);
    total += tensor_bytes(t);
    tensors.push_back(e);
  }
  j["tensor_count"] = f.tensors.size();
  j["total_bytes"] = total;
  j["state_dict_prefix"] = state_dict_prefix(f.tensors);
  if (const std::string model = detected_model(f); !model.empty()) j["model"] = model;
  j["tensors"] = tensors;
  j["metadata"] = f.metadata;
  const auto keys = dict_keys(f);
  if (!keys.empty()) {
    auto k = nlohmann::ordered_json::object();
    for (auto& [key, what] : keys) k[key] = what;
    j["dict_keys"] = k;
  }
  out << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

}  // namespace

void add_inspect(CLI::App& app, Action* action) {
  auto opts = std::make_shared<InspectOptions>();
  CLI::App* sub = app.add_subcommand(
      "inspect", "List the tensors of a .safetensors, .pt/.pth/.bin (PyTorch), .npy or .npz file");
  sub->add_option("FILE", opts->file, "the file to inspect")->required();
  sub->add_flag("--json", opts->json, "print JSON instead of a table");
  sub->callback([opts, action] {
    *action = [opts](Streams& s) {
      const TensorFile f = read_tensor_file(opts->file);
      if (opts->json) print_json(f, s.out);
      else print_text(f, s.out);
      return 0;
    };
  });
}

}  // namespace shallow::cli
