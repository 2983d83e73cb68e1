#include "weights_import/flatten.h"

#include <unordered_map>

#include <nlohmann/json.hpp>

namespace shallow {

using pickle::Kind;
using pickle::Object;

namespace {

// Whether a subtree holds a tensor, memoized so that shared subtrees are examined once.
class TensorFinder {
 public:
  explicit TensorFinder(const pickle::Pickle& p) : walk_(p) {}
  bool holds(const Object* o, int depth) {
    if (auto it = memo_.find(o); it != memo_.end()) return it->second;
    memo_[o] = false;  // in progress: a reference cycle adds nothing
    walk_.visit(depth);
    bool found = o->is(Kind::tensor);
    for (const Object* c : o->items) found = holds(c, depth + 1) || found;
    for (auto& [k, v] : o->entries) found = holds(v, depth + 1) || found;
    memo_[o] = found;
    return found;
  }

 private:
  std::unordered_map<const Object*, bool> memo_;
  pickle::Walk walk_;
};

nlohmann::ordered_json to_json(const pickle::Pickle& p, const Object* o, int depth, pickle::Walk& walk) {
  walk.visit(depth);
  p.charge(o->text.size() + 8);
  switch (o->kind) {
    case Kind::none: return nullptr;
    case Kind::boolean: return o->boolean;
    case Kind::integer: return o->integer;
    case Kind::floating: return o->floating;
    case Kind::string: return nlohmann::ordered_json(o->text);  // invalid UTF-8 is caught at dump()
    case Kind::tuple: case Kind::list: case Kind::set: {
      auto a = nlohmann::ordered_json::array();
      for (const Object* c : o->items) a.push_back(to_json(p, c, depth + 1, walk));
      return a;
    }
    case Kind::dict: {
      auto d = nlohmann::ordered_json::object();
      for (auto& [k, v] : o->entries)
        d[k->is(Kind::string) ? k->text : k->describe()] = to_json(p, v, depth + 1, walk);
      return d;
    }
    default: return o->describe();
  }
}

std::string key_text(const Object* k, const std::string& where) {
  if (k->is(Kind::string)) return k->text;
  if (k->is(Kind::integer)) return std::to_string(k->integer);
  throw Error(where + ": a dict key is a " + k->describe() + ", not a string or integer");
}

std::string json_text(const pickle::Pickle& p, const Object* o, pickle::Walk& walk) {
  try {
    std::string text = to_json(p, o, 0, walk).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    p.charge(text.size());
    return text;
  } catch (const nlohmann::json::exception& e) {
    throw Error(p.name() + ": " + e.what());
  }
}

// Dicts are always flattened; lists and tuples only when they hold tensors (a list of
// numbers or strings is one plain value).
void flatten(TensorFile& out, const pickle::Pickle& p, const Object* o, const std::string& name, int depth,
             pickle::Walk& walk, TensorFinder& finder) {
  walk.visit(depth);
  p.charge(name.size() + (o->is(Kind::string) ? o->text.size() : 0));
  const std::string prefix = name.empty() ? "" : name + ".";
  if (o->is(Kind::tensor)) {
    SH_CHECK(!out.tensors.count(name), p.name(), ": two tensors are named '", name, "'");
    out.tensors[name] = o->tensor;
  } else if (o->is(Kind::dict)) {
    for (auto& [k, v] : o->entries) flatten(out, p, v, prefix + key_text(k, p.name()), depth + 1, walk, finder);
  } else if (o->is_sequence() && finder.holds(o, 0)) {
    for (size_t i = 0; i < o->items.size(); ++i)
      flatten(out, p, o->items[i], prefix + std::to_string(i), depth + 1, walk, finder);
  } else {
    // The walk's budget is shared with the JSON text, so that shared references cannot make
    // the metadata larger than the pickle allows.
    out.metadata[name] = o->is(Kind::string) ? o->text : json_text(p, o, walk);
  }
}

}  // namespace

std::string plain_json(const pickle::Pickle& p, const Object* o) {
  pickle::Walk walk(p);
  return json_text(p, o, walk);
}

void flatten_into(TensorFile& out, const pickle::Pickle& p, const Object* root, const std::string& root_name) {
  pickle::Walk walk(p);
  TensorFinder finder(p);
  const bool container = root->is(Kind::dict) || (root->is_sequence() && finder.holds(root, 0));
  flatten(out, p, root, container ? "" : root_name, 0, walk, finder);
}

}  // namespace shallow
