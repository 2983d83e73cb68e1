#include "weights_import/numpy_pickle.h"

#include <algorithm>
#include <cstring>

#include "weights_import/elements.h"
#include "weights_import/numpy_dtype.h"

namespace shallow {

using pickle::Kind;
using pickle::Object;

const std::set<std::string>& numpy_globals() {
  static const std::set<std::string> kGlobals = {
      "numpy.ndarray", "numpy.dtype",
      "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
      "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
      "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer"};
  return kGlobals;
}

namespace {

bool is_one_of(const std::string& g, const char* a, const char* b) { return g == a || g == b; }

const std::vector<Object*>& call_args(const Object* o) { return o->items[1]->items; }

// A numpy.dtype call: dtype(descr, align, copy) with BUILD state (version, byte order, ...).
NumpyDType numpy_dtype_of(const Object* o, const std::string& where) {
  SH_CHECK(o->is(Kind::call) && o->callee() == "numpy.dtype", where, ": expected a numpy dtype, found ", o->describe());
  const auto& args = call_args(o);
  SH_CHECK(!args.empty() && args[0]->is(Kind::string), where, ": numpy dtype without a type string");
  char order = 0;
  if (o->state && o->state->is(Kind::tuple) && o->state->items.size() >= 2 && o->state->items[1]->is(Kind::string) &&
      o->state->items[1]->text.size() == 1)
    order = o->state->items[1]->text[0];
  // Structured dtypes carry field names in the state; their descr is 'V<n>' and is refused below.
  return parse_numpy_dtype(args[0]->text, where, order);
}

Shape shape_of(const Object* o, const std::string& where) {
  SH_CHECK(o->is_sequence(), where, ": numpy array shape is a ", pickle::kind_name(o->kind), ", not a tuple");
  Shape s;
  for (const Object* d : o->items) {
    SH_CHECK(d->is(Kind::integer) && d->integer >= 0, where, ": numpy array shape holds ", d->describe());
    s.push_back(d->integer);
  }
  return s;
}

Shape fortran_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

// A numeric array from its raw bytes (copied: pickled bytes live in the parser's memory).
Tensor numeric_array(const std::string& raw, const NumpyDType& dt, const Shape& shape, bool fortran,
                     const std::string& where) {
  int64_t numel = 0;
  try {
    numel = shape_numel(shape);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  const size_t nbytes = checked_byte_count(numel, dt.itemsize, raw.size(), where + ": numpy array");
  SH_CHECK(nbytes == raw.size(), where, ": numpy array of dtype ", dt.spelling, " and shape ", shape_str(shape),
           " needs ", nbytes, " bytes but holds ", raw.size());
  auto storage = storage_from_bytes(reinterpret_cast<const uint8_t*>(raw.data()), size_t(numel), dt.stored(),
                                    nullptr, where);
  return Tensor::from_storage(std::move(storage), shape, engine_dtype(dt.stored().type),
                              fortran ? fortran_strides(shape) : Shape{}, 0);
}

// Fixed-width text (UCS-4 for 'U', bytes for 'S'), trailing NULs removed, as UTF-8 strings.
std::vector<std::string> text_items(const std::string& raw, const NumpyDType& dt, int64_t count,
                                    const std::string& where) {
  std::vector<std::string> out;
  // A zero-width text dtype would let a few bytes claim any number of items.
  SH_CHECK(dt.itemsize > 0 || count == 0, where, ": numpy text dtype '", dt.spelling, "' has zero width");
  checked_byte_count(count, dt.itemsize, raw.size(), where + ": numpy text array");
  SH_CHECK(uint64_t(count) * dt.itemsize == raw.size(), where, ": numpy text array has ", raw.size(),
           " bytes for ", count, " items of ", dt.itemsize);
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(raw.data()) + size_t(i) * dt.itemsize;
    std::string s;
    if (dt.kind == 'S') {
      s.assign(reinterpret_cast<const char*>(p), dt.itemsize);
    } else {
      for (size_t k = 0; k < dt.itemsize / 4; ++k) {
        uint32_t c = 0;
        for (int b = 0; b < 4; ++b) c |= uint32_t(p[4 * k + size_t(b)]) << (8 * (dt.big_endian ? 3 - b : b));
        SH_CHECK(c <= 0x10FFFF, where, ": numpy text holds an invalid code point");
        if (c < 0x80) {
          s.push_back(char(c));
        } else if (c < 0x800) {
          s.push_back(char(0xC0 | (c >> 6)));
          s.push_back(char(0x80 | (c & 0x3F)));
        } else if (c < 0x10000) {
          s.push_back(char(0xE0 | (c >> 12)));
          s.push_back(char(0x80 | ((c >> 6) & 0x3F)));
          s.push_back(char(0x80 | (c & 0x3F)));
        } else {
          s.push_back(char(0xF0 | (c >> 18)));
          s.push_back(char(0x80 | ((c >> 12) & 0x3F)));
          s.push_back(char(0x80 | ((c >> 6) & 0x3F)));
          s.push_back(char(0x80 | (c & 0x3F)));
        }
      }
    }
    while (!s.empty() && s.back() == '\0') s.pop_back();
    out.push_back(std::move(s));
  }
  return out;
}

// Turns `o` into the array described by dtype, shape, order and data.
void become_array(pickle::Pickle& p, Object* o, const NumpyDType& dt, const Shape& shape, bool fortran,
                  const Object* data, const std::string& where) {
  int64_t numel = 0;
  try {
    numel = shape_numel(shape);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  if (dt.kind == 'O') {
    // Object arrays pickle their items as a list, in C order.
    SH_CHECK(data->is(Kind::list), where, ": numpy object array data is a ", pickle::kind_name(data->kind));
    SH_CHECK(int64_t(data->items.size()) == numel, where, ": numpy object array of shape ", shape_str(shape),
             " holds ", data->items.size(), " items");
    if (shape.empty()) {
      *o = Object(*data->items[0]);  // a 0-d object array (np.save of a dict) stands for its item
    } else {
      std::vector<Object*> items = data->items;
      *o = Object{};
      o->kind = Kind::list;
      o->items = std::move(items);
    }
    return;
  }
  SH_CHECK(data->is(Kind::bytes) || data->is(Kind::string), where, ": numpy array data is a ",
           pickle::kind_name(data->kind), ", not bytes");
  if (dt.kind == 'U' || dt.kind == 'S') {
    std::vector<std::string> strings = text_items(data->text, dt, numel, where);  // numel <= bytes
    p.charge(data->text.size() + strings.size() * sizeof(Object));
    *o = Object{};
    if (shape.empty()) {
      o->kind = Kind::string;
      o->text = strings.at(0);
      return;
    }
    o->kind = Kind::list;  // flattened in C order
    for (auto& s : strings) {
      Object* item = p.make(Kind::string);
      item->text = std::move(s);
      o->items.push_back(item);
    }
    return;
  }
  // What the tensor will take once widened to the engine's dtype.
  p.charge(data->text.size() / std::max<size_t>(dt.itemsize, 1) * dtype_size(engine_dtype(dt.stored().type)));
  Tensor t = numeric_array(data->text, dt, shape, fortran, where);
  *o = Object{};
  o->kind = Kind::tensor;
  o->tensor = std::move(t);
}

// numpy.core.multiarray.scalar(dtype, bytes): one number.
void become_scalar(Object* o, const NumpyDType& dt, const Object* data, const std::string& where) {
  if (dt.kind == 'O') {
    *o = Object(*data);
    return;
  }
  SH_CHECK(data->is(Kind::bytes) || data->is(Kind::string), where, ": numpy scalar data is a ",
           pickle::kind_name(data->kind));
  SH_CHECK(data->text.size() == dt.itemsize, where, ": numpy scalar of dtype ", dt.spelling, " holds ",
           data->text.size(), " bytes");
  if (dt.kind == 'U' || dt.kind == 'S') {
    std::string s = text_items(data->text, dt, 1, where).at(0);
    *o = Object{};
    o->kind = Kind::string;
    o->text = std::move(s);
    return;
  }
  const Tensor t = numeric_array(data->text, dt, {}, false, where);
  const double v = t.to_vector<double>()[0];
  *o = Object{};
  if (dt.kind == 'b') {
    o->kind = Kind::boolean;
    o->boolean = v != 0;
  } else if (dt.kind == 'f') {
    o->kind = Kind::floating;
    o->floating = v;
  } else {
    o->kind = Kind::integer;
    o->integer = t.dtype() == DType::i64 ? t.to_vector<int64_t>()[0] : int64_t(v);
  }
}

}  // namespace

bool resolve_numpy_object(pickle::Pickle& p, Object* o, const std::string& where) {
  if (!o->is(Kind::call)) return false;
  const std::string g = o->callee();
  const auto& args = call_args(o);
  if (g == "numpy.dtype") return true;  // read where an array or scalar uses it
  if (is_one_of(g, "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct")) {
    // _reconstruct(ndarray, (0,), b'b') makes an empty array; BUILD then sets
    // ([version,] shape, dtype, is_fortran, data).
    SH_CHECK(!args.empty() && args[0]->is(Kind::global) && args[0]->text == "numpy.ndarray", where,
             ": numpy _reconstruct of something other than numpy.ndarray");
    SH_CHECK(o->state && o->state->is(Kind::tuple), where, ": numpy array without its state (BUILD)");
    std::vector<Object*> st = o->state->items;
    if (st.size() == 5) st.erase(st.begin());  // drops the version
    SH_CHECK(st.size() == 4, where, ": numpy array state has ", o->state->items.size(), " fields, not 4 or 5");
    SH_CHECK(st[2]->is(Kind::boolean) || st[2]->is(Kind::integer), where, ": numpy array order flag is ",
             st[2]->describe());
    become_array(p, o, numpy_dtype_of(st[1], where), shape_of(st[0], where), st[2]->boolean || st[2]->integer != 0, st[3],
                 where);
    return true;
  }
  if (is_one_of(g, "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer")) {
    // _frombuffer(buffer, dtype, shape, order): protocol 5's in-band arrays.
    SH_CHECK(args.size() == 4 && args[3]->is(Kind::string), where, ": numpy _frombuffer takes 4 arguments");
    become_array(p, o, numpy_dtype_of(args[1], where), shape_of(args[2], where), args[3]->text == "F", args[0], where);
    return true;
  }
  if (is_one_of(g, "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar")) {
    SH_CHECK(args.size() == 2, where, ": numpy scalar takes 2 arguments");
    become_scalar(o, numpy_dtype_of(args[0], where), args[1], where);
    return true;
  }
  return false;
}

void resolve_numpy_objects(pickle::Pickle& p) {
  pickle::visit_post_order(p, p.root(), [&](Object* o) {
    if (o->is(Kind::call) && !resolve_numpy_object(p, o, p.name()) && o->callee() != "numpy.dtype")
      throw Error(p.name() + ": cannot rebuild " + o->describe());
  });
}

}  // namespace shallow
