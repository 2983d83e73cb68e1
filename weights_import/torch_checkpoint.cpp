#include "weights_import/torch_checkpoint.h"

#include <cstring>
#include <functional>
#include <map>
#include <unordered_map>

#include "weights_import/byte_reader.h"
#include "weights_import/elements.h"
#include "weights_import/flatten.h"
#include "weights_import/numpy_pickle.h"
#include "weights_import/pickle.h"
#include "weights_import/zip.h"

namespace shallow {

using pickle::Kind;
using pickle::Object;

namespace {

// 0x1950a86a20f9469cfc6c, pickled by torch as LONG1 in little-endian order.
const uint8_t kLegacyMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocolVersion = 1001;

const std::map<std::string, ElementType>& storage_types() {
  static const std::map<std::string, ElementType> kTypes = {
      {"FloatStorage", ElementType::f32}, {"DoubleStorage", ElementType::f64},
      {"HalfStorage", ElementType::f16},  {"BFloat16Storage", ElementType::bf16},
      {"LongStorage", ElementType::i64},  {"IntStorage", ElementType::i32},
      {"ShortStorage", ElementType::i16}, {"CharStorage", ElementType::i8},
      {"ByteStorage", ElementType::u8},   {"BoolStorage", ElementType::boolean}};
  return kTypes;
}

const std::set<std::string>& torch_globals() {
  static const std::set<std::string> kGlobals = [] {
    std::set<std::string> g = {"torch._utils._rebuild_tensor",        "torch._utils._rebuild_tensor_v2",
                               "torch._utils._rebuild_parameter",     "torch._utils._rebuild_parameter_with_state",
                               "torch._tensor._rebuild_from_type_v2", "torch.Tensor",
                               "torch.nn.parameter.Parameter",        "torch.Size"};
    for (auto& [name, _] : storage_types()) {
      g.insert("torch." + name);
      g.insert("torch.cuda." + name);  // legacy checkpoints saved from a GPU
    }
    for (const std::string& n : numpy_globals()) g.insert(n);  // numpy scalars in training state
    return g;
  }();
  return kGlobals;
}

// Loads the bytes of storage `key` holding `numel` elements of `type`.
using StorageLoader = std::function<std::shared_ptr<Storage>(const std::string& key, StoredType type, int64_t numel)>;

struct StorageRef {
  std::shared_ptr<Storage> storage;
  DType dtype;
  int64_t numel;
};

// Rebuilds the tensors of a torch pickle in place: storages from persistent ids, tensors from
// the _rebuild_* calls, numpy objects through numpy_pickle.
class TorchResolver {
 public:
  // `big_endian`: the byte order of every storage's data.
  TorchResolver(pickle::Pickle& p, bool big_endian, StorageLoader load)
      : p_(p), big_endian_(big_endian), load_(std::move(load)), where_(p.name()) {}

  void run() {
    pickle::visit_post_order(p_, p_.root(), [&](Object* o) { resolve(o); });
  }

  // The storages whose elements the file holds in another form than the engine ("i16",
  // "f32 big-endian"), for TensorFile::stored_dtypes.
  const std::unordered_map<const Storage*, std::string>& stored_types() const { return stored_types_; }

 private:
  void resolve(Object* o) {
    // Storages (persistent ids) are read by the rebuild calls that use them; one saved on its
    // own (torch.save(storage)) stays a node and shows in the metadata as such.
    if (!o->is(Kind::call)) return;
    if (resolve_numpy_object(p_, o, where_)) return;
    const std::string g = o->callee();
    const auto& args = o->items[1]->items;
    if (g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor") {
      // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
      SH_CHECK(args.size() >= 4 && args.size() <= 7, where_, ": ", g, " with ", args.size(), " arguments");
      become_tensor(o, rebuild(args[0], args[1], args[2], args[3]));
    } else if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
      // (data, requires_grad, backward_hooks[, state]): the data is the tensor.
      SH_CHECK(!args.empty() && args[0]->is(Kind::tensor), where_, ": ", g, " of ", args.empty() ? "nothing" : args[0]->describe());
      become_tensor(o, args[0]->tensor);
    } else if (g == "torch._tensor._rebuild_from_type_v2") {
      // (func, type, args, state): func(*args) made the tensor; the type is Tensor or Parameter.
      SH_CHECK(args.size() == 4 && args[0]->is(Kind::global) && args[1]->is(Kind::global) && args[2]->is(Kind::tuple),
               where_, ": malformed ", g);
      SH_CHECK(args[1]->text == "torch.Tensor" || args[1]->text == "torch.nn.parameter.Parameter", where_,
               ": tensor subclass ", args[1]->text, " is not supported");
      Object* inner = p_.make(Kind::call);
      inner->items = {args[0], args[2]};
      resolve(inner);
      SH_CHECK(inner->is(Kind::tensor), where_, ": ", args[0]->text, " did not make a tensor");
      become_tensor(o, inner->tensor);
    } else if (g == "torch.Size") {
      SH_CHECK(args.size() <= 1 && (args.empty() || args[0]->is_sequence()), where_, ": malformed torch.Size");
      std::vector<Object*> dims = args.empty() ? std::vector<Object*>{} : args[0]->items;
      *o = Object{};
      o->kind = Kind::tuple;
      o->items = std::move(dims);
    } else {
      throw Error(where_ + ": cannot rebuild " + o->describe());
    }
  }

  void become_tensor(Object* o, Tensor t) {
    *o = Object{};
    o->kind = Kind::tensor;
    o->tensor = std::move(t);
  }

  Shape int_tuple(const Object* o, const char* what) {
    SH_CHECK(o->is_sequence(), where_, ": tensor ", what, " is ", o->describe(), ", not a tuple");
    Shape s;
    for (const Object* d : o->items) {
      SH_CHECK(d->is(Kind::integer), where_, ": tensor ", what, " holds ", d->describe());
      s.push_back(d->integer);
    }
    return s;
  }

  Tensor rebuild(const Object* storage_pid, const Object* offset, const Object* size, const Object* stride) {
    const StorageRef& s = storage(storage_pid);
    SH_CHECK(offset->is(Kind::integer), where_, ": tensor storage offset is ", offset->describe());
    const Shape shape = int_tuple(size, "size"), strides = int_tuple(stride, "stride");
    check_view_bounds(shape, strides, offset->integer, s.numel, where_ + ": tensor");
    return Tensor::from_storage(s.storage, shape, s.dtype, strides, offset->integer);
  }

  // ('storage', storage_type, key, location, numel[, view_metadata])
  const StorageRef& storage(const Object* pid) {
    SH_CHECK(pid->is(Kind::persistent_id), where_, ": a tensor's storage is ", pid->describe(), ", not a storage");
    const Object* t = pid->items[0];
    SH_CHECK(t->is(Kind::tuple) && t->items.size() >= 5 && t->items[0]->is(Kind::string) &&
                 t->items[0]->text == "storage",
             where_, ": persistent id ", t->describe(), " is not a storage");
    const auto& f = t->items;
    SH_CHECK(f[1]->is(Kind::global), where_, ": storage type is ", f[1]->describe());
    const std::string type_name = f[1]->text.substr(f[1]->text.rfind('.') + 1);
    auto type = storage_types().find(type_name);
    SH_CHECK(type != storage_types().end(), where_, ": unsupported storage type ", f[1]->text);
    SH_CHECK(f[2]->is(Kind::string), where_, ": storage key is ", f[2]->describe());
    SH_CHECK(f[4]->is(Kind::integer) && f[4]->integer >= 0, where_, ": storage size is ", f[4]->describe());
    const std::string& key = f[2]->text;
    const ElementType et = type->second;

    std::string cache_key = key;
    const Object* view = f.size() >= 6 ? f[5] : nullptr;
    if (view && !view->is(Kind::none)) {
      // Legacy storage views: (view_key, offset, size) into the storage `key`.
      SH_CHECK(view->is(Kind::tuple) && view->items.size() == 3 && view->items[0]->is(Kind::string) &&
                   view->items[1]->is(Kind::integer) && view->items[2]->is(Kind::integer),
               where_, ": malformed storage view ", view->describe());
      cache_key = view->items[0]->text;
    }
    if (auto it = cache_.find(cache_key); it != cache_.end()) {
      SH_CHECK(it->second.dtype == engine_dtype(et), where_, ": storage '", cache_key,
               "' is used with two different dtypes");
      return it->second;
    }
    StorageRef root{load_(key, StoredType{et, big_endian_}, f[4]->integer), engine_dtype(et), f[4]->integer};
    note_stored_type(root.storage.get(), et);
    if (cache_key == key) return cache_[key] = root;
    // The view: a window of the root storage that keeps it alive.
    const int64_t off = view->items[1]->integer, n = view->items[2]->integer;
    SH_CHECK(off >= 0 && n >= 0 && off <= root.numel && n <= root.numel - off, where_, ": storage view [", off,
             ", +", n, ") is outside storage '", key, "' of ", root.numel, " elements");
    auto* base = static_cast<uint8_t*>(root.storage->data()) + size_t(off) * dtype_size(root.dtype);
    auto window = std::make_shared<Storage>(base, size_t(n) * dtype_size(root.dtype), Device::cpu(), root.storage);
    note_stored_type(window.get(), et);
    return cache_[cache_key] = StorageRef{window, root.dtype, n};
  }

  // Remembers storages whose elements the file holds in another form than the engine's.
  void note_stored_type(const Storage* s, ElementType et) {
    std::string stored = element_name(et);
    if (big_endian_ && element_size(et) > 1) stored += " big-endian";
    if (stored != dtype_name(engine_dtype(et))) stored_types_[s] = stored;
  }

  pickle::Pickle& p_;
  bool big_endian_;
  std::unordered_map<const Storage*, std::string> stored_types_;
  StorageLoader load_;
  std::string where_;
  std::unordered_map<std::string, StorageRef> cache_;
};

TensorFile finish(const FileBytes& bytes, const char* format, pickle::Pickle& p, const TorchResolver& resolver) {
  TensorFile f;
  f.path = bytes.name;
  f.format = format;
  std::string stem = bytes.name.substr(bytes.name.find_last_of('/') + 1);
  stem = stem.substr(0, stem.find('.'));
  flatten_into(f, p, p.root(), stem.empty() ? "tensor" : stem);
  for (auto& [name, t] : f.tensors)
    if (auto it = resolver.stored_types().find(t.storage().get()); it != resolver.stored_types().end())
      f.stored_dtypes[name] = it->second;
  return f;
}

// ---- the zip format

TensorFile parse_zip(const FileBytes& bytes) {
  ZipReader zip(bytes);
  const ZipReader::Entry* pkl = nullptr;
  std::string prefix;
  for (const auto& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || e.name.substr(slash) != "/data.pkl") continue;
    SH_CHECK(pkl == nullptr, bytes.name, ": archive holds two pickles, ", pkl ? pkl->name : "", " and ", e.name);
    pkl = &e;
    prefix = e.name.substr(0, slash + 1);
  }
  SH_CHECK(pkl != nullptr, bytes.name, ": zip archive has no <name>/data.pkl entry: not a PyTorch checkpoint");

  bool big_endian = false;
  if (const auto* order = zip.find(prefix + "byteorder")) {
    const FileBytes b = zip.read(*order);
    const std::string s(reinterpret_cast<const char*>(b.data), b.size);
    SH_CHECK(s == "little" || s == "big", bytes.name, ": byteorder entry says '", s, "'");
    big_endian = s == "big";
  }

  const FileBytes pickled = zip.read(*pkl);
  auto p = pickle::Pickle::parse(pickled.data, pickled.size, 0, pickled.name, torch_globals());
  TorchResolver resolver(*p, big_endian, [&](const std::string& key, StoredType type, int64_t numel) {
    const std::string name = prefix + "data/" + key;
    const ZipReader::Entry* e = zip.find(name);
    SH_CHECK(e != nullptr, bytes.name, ": storage '", key, "' is missing (no entry ", name, ")");
    const size_t nbytes = checked_byte_count(numel, element_size(type.type), e->size, bytes.name + ": " + name);
    SH_CHECK(nbytes == e->size, bytes.name, ": ", name, " holds ", e->size, " bytes, but its storage of ", numel,
             " ", element_name(type.type), " elements needs ", nbytes);
    const FileBytes data = zip.read(*e);
    return storage_from_bytes(data.data, size_t(numel), type, data.owner, data.name);
  });
  resolver.run();
  return finish(bytes, "pytorch zip", *p, resolver);
}

// ---- the legacy format

TensorFile parse_legacy(const FileBytes& bytes) {
  const std::string& name = bytes.name;
  static const std::set<std::string> kNoGlobals;
  size_t pos = 0;
  auto magic = pickle::Pickle::parse(bytes.data, bytes.size, pos, name, kNoGlobals, &pos);
  const Object* m = magic->root();
  SH_CHECK(m->is(Kind::big_integer) && m->text.size() == sizeof(kLegacyMagic) &&
               std::memcmp(m->text.data(), kLegacyMagic, sizeof(kLegacyMagic)) == 0,
           name, ": not a PyTorch checkpoint (wrong magic number)");
  auto version = pickle::Pickle::parse(bytes.data, bytes.size, pos, name, kNoGlobals, &pos);
  SH_CHECK(version->root()->is(Kind::integer) && version->root()->integer == kLegacyProtocolVersion, name,
           ": legacy checkpoint protocol ", version->root()->describe(), " (expected ", kLegacyProtocolVersion, ")");
  auto sys_info = pickle::Pickle::parse(bytes.data, bytes.size, pos, name, kNoGlobals, &pos);
  const Object* little = sys_info->root()->get("little_endian");
  SH_CHECK(little && little->is(Kind::boolean), name, ": legacy checkpoint lacks its byte order");

  auto p = pickle::Pickle::parse(bytes.data, bytes.size, pos, name, torch_globals(), &pos);
  auto keys = pickle::Pickle::parse(bytes.data, bytes.size, pos, name, kNoGlobals, &pos);
  SH_CHECK(keys->root()->is(Kind::list), name, ": legacy checkpoint's storage key list is ", keys->root()->describe());

  // The storages follow in the order of the key list, each an 8-byte element count and the
  // data. Element sizes come from the pickle's persistent ids: collect them first.
  struct Layout {
    StoredType type;
    int64_t numel = -1;
    size_t offset = 0;  // of the data, in the file
  };
  std::unordered_map<std::string, Layout> layout;
  pickle::visit_post_order(*p, p->root(), [&](Object* o) {
    if (!o->is(Kind::persistent_id)) return;
    const Object* t = o->items[0];
    SH_CHECK(t->is(Kind::tuple) && t->items.size() >= 5 && t->items[1]->is(Kind::global) &&
                 t->items[2]->is(Kind::string) && t->items[4]->is(Kind::integer),
             name, ": persistent id ", t->describe(), " is not a storage");
    const std::string& g = t->items[1]->text;
    auto type = storage_types().find(g.substr(g.rfind('.') + 1));
    SH_CHECK(type != storage_types().end(), name, ": unsupported storage type ", g);
    Layout& l = layout[t->items[2]->text];
    const StoredType st{type->second, !little->boolean};
    SH_CHECK(l.numel < 0 || (l.type.type == st.type && l.numel == t->items[4]->integer), name, ": storage '",
             t->items[2]->text, "' is described twice, differently");
    l.type = st;
    l.numel = t->items[4]->integer;
  });

  ByteReader in(bytes.data, bytes.size, name);
  in.seek(pos, "storage data");
  std::set<std::string> listed;
  for (const Object* k : keys->root()->items) {
    SH_CHECK(k->is(Kind::string), name, ": storage key ", k->describe(), " is not a string");
    SH_CHECK(listed.insert(k->text).second, name, ": storage key '", k->text, "' is listed twice");
    auto it = layout.find(k->text);
    SH_CHECK(it != layout.end(), name, ": storage '", k->text, "' is listed but no tensor uses it");
    Layout& l = it->second;
    const uint64_t count = in.u64("storage element count");
    SH_CHECK(count == uint64_t(l.numel), name, ": storage '", k->text, "' holds ", count,
             " elements but the pickle says ", l.numel);
    const size_t nbytes = checked_byte_count(l.numel, element_size(l.type.type), in.remaining(),
                                             name + ": storage '" + k->text + "'");
    l.offset = in.pos();
    in.take(nbytes, "storage data");
  }
  SH_CHECK(in.at_end(), name, ": ", in.remaining(), " unexpected bytes after the last storage");

  TorchResolver resolver(*p, !little->boolean, [&](const std::string& key, StoredType type, int64_t numel) {
    auto it = layout.find(key);
    SH_CHECK(it != layout.end() && listed.count(key), name, ": storage '", key, "' is missing from the file");
    return storage_from_bytes(bytes.data + it->second.offset, size_t(numel), type, bytes.owner,
                              name + ": storage '" + key + "'");
  });
  resolver.run();
  return finish(bytes, "pytorch legacy", *p, resolver);
}

}  // namespace

bool looks_like_legacy_torch(const uint8_t* data, size_t size) {
  // PROTO 2, then LONG1 of 10 bytes holding the magic number.
  return size >= 14 && data[0] == 0x80 && data[1] == 0x02 && data[2] == 0x8a && data[3] == 10 &&
         std::memcmp(data + 4, kLegacyMagic, sizeof(kLegacyMagic)) == 0;
}

TensorFile read_torch_checkpoint(const std::string& path) { return parse_torch_checkpoint(map_file(path)); }

TensorFile parse_torch_checkpoint(const FileBytes& bytes) {
  if (ZipReader::looks_like_zip(bytes.data, bytes.size)) return parse_zip(bytes);
  SH_CHECK(bytes.size > 0, bytes.name, ": empty file");
  if (bytes.size >= 262 && std::memcmp(bytes.data + 257, "ustar", 5) == 0)
    throw Error(bytes.name + ": tar-format checkpoints (PyTorch before 0.4) are not supported");
  return parse_legacy(bytes);
}

}  // namespace shallow
