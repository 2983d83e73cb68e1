#include "weights_import/name_maps/rename.h"

#include <cmath>

namespace shallow::name_maps {

namespace {
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool starts_with(const std::string& s, const std::string& head) {
  return s.compare(0, head.size(), head) == 0;
}
}  // namespace

std::optional<std::string> find_prefix(const Tensors& tensors, const std::string& marker,
                                       const std::vector<std::string>& also) {
  std::optional<std::string> best;
  for (const auto& [name, t] : tensors) {
    if (!ends_with(name, marker)) continue;
    const std::string prefix = name.substr(0, name.size() - marker.size());
    if (!prefix.empty() && prefix.back() != '.') continue;  // "xconv1.weight" is not "conv1.weight"
    bool all = true;
    for (const std::string& other : also) all = all && tensors.count(prefix + other) > 0;
    if (all && (!best || prefix.size() < best->size())) best = prefix;
  }
  return best;
}

int64_t count_numbered(const Tensors& tensors, const std::string& before, const std::string& after) {
  int64_t n = 0;
  while (tensors.count(before + std::to_string(n) + after)) ++n;
  return n;
}

const Tensor& require(const Tensors& tensors, const std::string& name, Layout layout) {
  auto it = tensors.find(name);
  SH_CHECK(it != tensors.end(), layout_name(layout), " weights: no tensor '", name, "'");
  return it->second;
}

int64_t square_side(int64_t positions, const std::string& what) {
  const int64_t side = int64_t(std::llround(std::sqrt(double(std::max<int64_t>(positions, 0)))));
  SH_CHECK(side > 0 && side * side == positions, what, ": ", positions,
           " positions do not form a square grid");
  return side;
}

Tensor Renamer::take(const std::string& name) {
  const Tensor& t = require(tensors_, prefix_ + name, layout_);
  used_.insert(prefix_ + name);
  return t;
}

void Renamer::skip_under(const std::string& name_prefix) {
  skipped_prefixes_.push_back(prefix_ + name_prefix);
}

void Renamer::rename(const std::string& canonical, const std::string& name) {
  put(canonical, take(name));
}

void Renamer::rename_linear(const std::string& canonical, const std::string& name) {
  rename(canonical + ".weight", name + ".weight");
  if (has(name + ".bias")) rename(canonical + ".bias", name + ".bias");
}

void Renamer::split_qkv(const std::string& attn, const std::string& weight,
                        const std::string& bias) {
  const Tensor w = take(weight);
  SH_CHECK(w.dim() == 2 && w.size(0) % 3 == 0, layout_name(layout_), " weights: '", prefix_,
           weight, "' should be a fused [3D, D] projection, got ", shape_str(w.shape()));
  const int64_t d = w.size(0) / 3;
  const char* parts[3] = {".q", ".k", ".v"};
  for (int i = 0; i < 3; ++i) put(attn + parts[i] + ".weight", w.narrow(0, i * d, d));
  if (has(bias)) {
    const Tensor b = take(bias);
    SH_CHECK(b.dim() == 1 && b.size(0) == 3 * d, layout_name(layout_), " weights: '", prefix_,
             bias, "' should be [", 3 * d, "], got ", shape_str(b.shape()));
    for (int i = 0; i < 3; ++i) put(attn + parts[i] + ".bias", b.narrow(0, i * d, d));
  }
}

Tensors Renamer::finish() const {
  std::vector<std::string> unused;
  for (const auto& [name, t] : tensors_) {
    if (!starts_with(name, prefix_) || used_.count(name)) continue;
    bool skipped = false;
    for (const std::string& p : skipped_prefixes_) skipped = skipped || starts_with(name, p);
    if (!skipped) unused.push_back(name);
  }
  if (!unused.empty()) {
    std::string list;
    for (size_t i = 0; i < unused.size() && i < 8; ++i) list += (i ? ", " : "") + unused[i];
    if (unused.size() > 8) list += ", ... (" + std::to_string(unused.size()) + " in all)";
    throw Error(str_cat(layout_name(layout_), " weights: ", unused.size(),
                        " tensor(s) of a variant this project does not implement: ", list));
  }
  return out_;
}

}  // namespace shallow::name_maps
