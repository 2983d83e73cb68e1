#pragma once
// A reader for Python's pickle format (protocols 0 to 5) that builds a tree of plain values and
// never executes anything.
//
// Pickles rebuild objects by calling functions named by module and name ("globals"). This reader
// knows a few pure data constructors itself (OrderedDict, set, bytearray, _codecs.encode) and
// accepts only the other globals its caller lists: a call to one of them becomes a `call` node
// (the function, its arguments and any BUILD state) that the caller interprets afterwards
// (torch_checkpoint.cpp, numpy_pickle.cpp). Any other global is an error that names it.
//
// Every object lives in the Pickle's arena and refers to others by raw pointer, so shared and
// even cyclic references (which a malicious pickle can make) cost nothing to free. Walks over
// the tree must therefore bound their depth and their work: see Walk below.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace shallow::pickle {

enum class Kind {
  none, boolean, integer, big_integer, floating, string, bytes,
  tuple, list, set, dict,
  global,         // a reference to module.name (text holds "module.name")
  call,           // items = {callable, args[, kwargs]}; state = BUILD's argument or null
  persistent_id,  // items = {pid}: an object the pickle refers to outside itself (torch storages)
  tensor,         // made by a caller's resolver: a tensor or array
};

const char* kind_name(Kind k);

struct Object {
  Kind kind = Kind::none;
  bool boolean = false;
  int64_t integer = 0;
  double floating = 0;
  // string: UTF-8; bytes: raw; big_integer: little-endian two's complement; global: "module.name".
  std::string text;
  std::vector<Object*> items;                         // tuple, list, set, call, persistent_id
  std::vector<std::pair<Object*, Object*>> entries;  // dict, in insertion order
  Object* state = nullptr;
  Tensor tensor;

  bool is(Kind k) const { return kind == k; }
  bool is_sequence() const { return kind == Kind::tuple || kind == Kind::list; }
  // For a dict: the value under a string key, or nullptr.
  const Object* get(const std::string& key) const;
  // For a call: "module.name" of the function called, or "".
  std::string callee() const;
  // Short description for messages: "dict of 3 entries", "str 'abc'", "tensor f32 [2, 3]".
  std::string describe() const;
};

class Pickle {
 public:
  // Parses one pickle stream that starts at data[offset]; `end` (when given) receives the offset
  // just past its STOP opcode. `name` is used in error messages.
  static std::shared_ptr<Pickle> parse(const uint8_t* data, size_t size, size_t offset, const std::string& name,
                                       const std::set<std::string>& allowed_globals, size_t* end = nullptr);

  Object* root() const { return root_; }
  void set_root(Object* o) { root_ = o; }
  const std::string& name() const { return name_; }
  size_t object_count() const { return arena_.size(); }
  // A new object in this pickle's arena (used by resolvers that rewrite nodes).
  Object* make(Kind kind);

  // Whoever builds from the tree (arrays, names, text) charges the bytes it makes here. The
  // budget is proportional to the pickle's own size: a pickle can refer to one large string
  // many times for a few bytes each, and must not make a result far larger than itself.
  void charge(size_t bytes) const;

 private:
  std::string name_;
  size_t source_bytes_ = 0;
  mutable size_t charged_ = 0;
  std::deque<Object> arena_;
  Object* root_ = nullptr;
};

// Bounds a recursive walk over a pickle's tree: depth beyond kMaxDepth, or more node visits
// than the pickle could legitimately need (shared references can make a tree exponentially
// larger than its pickle), is an error naming the pickle.
class Walk {
 public:
  static constexpr int kMaxDepth = 200;
  explicit Walk(const Pickle& p) : name_(p.name()), budget_(4 * p.object_count() + 1024) {}
  // Call on entering a node at `depth`; throws when a limit is passed.
  void visit(int depth);

 private:
  std::string name_;
  size_t budget_;
};

// Calls fn on every object reachable from root, once each, children before parents: the order
// in which a resolver needs them (a call's arguments are resolved before the call). Depth is
// bounded by Walk::kMaxDepth; a reference cycle is cut where it closes.
void visit_post_order(const Pickle& p, Object* root, const std::function<void(Object*)>& fn);

}  // namespace shallow::pickle
