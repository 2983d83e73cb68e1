#pragma once
// Helpers shared by the name maps: finding where a model's names start, counting numbered
// blocks, and a Renamer that builds the canonical state dict while keeping track of the file's
// names it used, so that a name nothing maps is reported instead of silently dropped.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "weights_import/name_maps/architecture.h"

namespace shallow::name_maps {

// The shortest prefix P such that P + marker and P + each of `also` name tensors; nullopt when
// no name ends with the marker that way.
std::optional<std::string> find_prefix(const Tensors& tensors, const std::string& marker,
                                       const std::vector<std::string>& also = {});

// How many consecutive i from 0 have `before + i + after` in the tensors.
int64_t count_numbered(const Tensors& tensors, const std::string& before, const std::string& after);

// The tensor `name`; throws naming the file layout and the tensor when it is absent.
const Tensor& require(const Tensors& tensors, const std::string& name, Layout layout);

// Side of a square grid of `positions` entries; throws when it is not a square.
int64_t square_side(int64_t positions, const std::string& what);

class Renamer {
 public:
  Renamer(const Tensors& tensors, std::string prefix, Layout layout)
      : tensors_(tensors), prefix_(std::move(prefix)), layout_(layout) {}

  bool has(const std::string& name) const { return tensors_.count(prefix_ + name) > 0; }
  // The file's tensor prefix + name, marked as used; throws if absent.
  Tensor take(const std::string& name);
  // Marks prefix + name as used without mapping it (position ids, a mask token, a classifier).
  void skip(const std::string& name) { used_.insert(prefix_ + name); }
  void skip_under(const std::string& name_prefix);  // every name under prefix + name_prefix

  void put(const std::string& canonical, const Tensor& t) { out_[canonical] = t; }
  // put(canonical, take(name)), for both .weight and .bias when `pair` (bias only if present).
  void rename(const std::string& canonical, const std::string& name);
  void rename_linear(const std::string& canonical, const std::string& name);
  // A fused [3D, ...] q/k/v projection (and its bias, if present) split into canonical
  // <to>.q/.k/.v.
  void split_qkv(const std::string& canonical_attn, const std::string& weight,
                 const std::string& bias);

  // The canonical tensors; throws listing the names under the prefix that were not used.
  Tensors finish() const;

 private:
  const Tensors& tensors_;
  std::string prefix_;
  Layout layout_;
  std::set<std::string> used_;
  std::vector<std::string> skipped_prefixes_;
  Tensors out_;
};

}  // namespace shallow::name_maps
