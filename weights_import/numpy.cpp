#include "weights_import/numpy.h"

#include <cctype>
#include <cstring>

#include "weights_import/byte_reader.h"
#include "weights_import/elements.h"
#include "weights_import/file_writer.h"
#include "weights_import/flatten.h"
#include "weights_import/numpy_dtype.h"
#include "weights_import/numpy_pickle.h"
#include "weights_import/pickle.h"
#include "weights_import/zip.h"

namespace shallow {
namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr uint8_t kPickleProto = 0x80;

// ---- the header: a Python dict literal with string, bool and tuple-of-int values

struct Header {
  std::string descr;
  bool fortran = false;
  Shape shape;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& where) : s_(text), where_(where) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (peek() == '[') fail("structured dtypes (a list of fields) are not supported");
        h.descr = string_literal();
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran = boolean();
        have_order = true;
      } else if (key == "shape") {
        h.shape = int_tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') ++i_;
      else if (peek() != '}') fail("expected ',' or '}'");
    }
    ++i_;
    skip_space();
    if (i_ != s_.size()) fail("text after the closing '}'");
    if (!have_descr || !have_order || !have_shape) fail("lacks descr, fortran_order or shape");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(where_ + ": .npy header " + why + " (header: " + s_.substr(0, 200) + ")");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(uint8_t(s_[i_]))) ++i_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string string_literal() {
    skip_space();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const size_t end = s_.find(q, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string v = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return v;
  }
  bool boolean() {
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    fail("fortran_order is neither True nor False");
  }
  Shape int_tuple() {
    expect('(');
    Shape shape;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(uint8_t(peek()))) fail("shape holds something other than non-negative integers");
      int64_t v = 0;
      while (std::isdigit(uint8_t(peek()))) {
        const int digit = s_[i_++] - '0';
        if (v > (INT64_MAX - digit) / 10) fail("shape dimension overflows 64 bits");
        v = v * 10 + digit;
      }
      if (peek() == 'L') ++i_;  // Python 2 longs
      shape.push_back(v);
      skip_space();
      if (peek() == ',') ++i_;
      else if (peek() != ')') fail("expected ',' or ')' in shape");
    }
    ++i_;
    return shape;
  }

  const std::string& s_;
  std::string where_;
  size_t i_ = 0;
};

Shape fortran_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

std::string stem_of(const std::string& path) {
  std::string stem = path.substr(path.find_last_of('/') + 1);
  const size_t dot = stem.rfind('.');
  if (dot != std::string::npos && dot > 0) stem = stem.substr(0, dot);
  return stem.empty() ? "array" : stem;
}

// A pickle (inside an object .npy, or bare) read with NumPy's globals and flattened.
void read_pickled(TensorFile& f, const FileBytes& bytes, size_t offset, const std::string& root_name) {
  size_t end = 0;
  auto p = pickle::Pickle::parse(bytes.data, bytes.size, offset, bytes.name, numpy_globals(), &end);
  SH_CHECK(end == bytes.size, bytes.name, ": ", bytes.size - end, " unexpected bytes after the pickle");
  resolve_numpy_objects(*p);
  flatten_into(f, *p, p->root(), root_name);
  f.object = p;
}

}  // namespace

bool looks_like_npy(const uint8_t* data, size_t size) {
  return size >= kMagicLen && std::memcmp(data, kMagic, kMagicLen) == 0;
}

TensorFile parse_npy(const FileBytes& bytes, const std::string& array_name) {
  const std::string& where = bytes.name;
  TensorFile f;
  f.path = bytes.name;
  if (bytes.size > 0 && bytes.data[0] == kPickleProto) {
    f.format = "pickle";
    read_pickled(f, bytes, 0, array_name);
    return f;
  }
  SH_CHECK(looks_like_npy(bytes.data, bytes.size), where,
           ": not an .npy file (it starts with neither the NumPy magic string nor a pickle)");
  ByteReader in(bytes.data, bytes.size, where);
  in.take(kMagicLen, "magic string");
  const uint8_t major = in.u8("format version"), minor = in.u8("format version");
  SH_CHECK(major >= 1 && major <= 3 && minor == 0, where, ": .npy format version ", int(major), ".", int(minor),
           " is not supported (1.0 to 3.0 are)");
  const uint32_t header_len = major == 1 ? in.u16("header length") : in.u32("header length");
  const uint8_t* h = in.take(header_len, "header");
  // Version 1 and 2 headers are latin-1, version 3 UTF-8; the keys and values we read are ASCII.
  const Header header = HeaderParser(std::string(reinterpret_cast<const char*>(h), header_len), where).parse();
  const NumpyDType dt = parse_numpy_dtype(header.descr, where);

  if (dt.kind == 'O') {
    f.format = "npy (pickled object)";
    read_pickled(f, bytes, in.pos(), array_name);
    return f;
  }
  SH_CHECK(dt.is_numeric(), where, ": arrays of dtype '", header.descr,
           "' (text) cannot become tensors; only numbers and pickled objects are read");
  f.format = "npy";
  int64_t numel = 0;
  try {
    numel = shape_numel(header.shape);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  const size_t nbytes = checked_byte_count(numel, dt.itemsize, in.remaining(), where + ": array data");
  SH_CHECK(nbytes == in.remaining(), where, ": array of dtype ", header.descr, " and shape ", shape_str(header.shape),
           " takes ", nbytes, " bytes but the file has ", in.remaining(), " after its header");
  const StoredType st = dt.stored();
  auto storage = storage_from_bytes(bytes.data + in.pos(), size_t(numel), st, bytes.owner, where);
  f.tensors[array_name] = Tensor::from_storage(std::move(storage), header.shape, engine_dtype(st.type),
                                               header.fortran ? fortran_strides(header.shape) : Shape{}, 0);
  if (!stored_as_is(st)) f.stored_dtypes[array_name] = header.descr;
  return f;
}

TensorFile read_npy(const std::string& path) { return parse_npy(map_file(path), stem_of(path)); }

Tensor read_npy_array(const std::string& path) {
  TensorFile f = read_npy(path);
  SH_CHECK(f.format == "npy", path, ": holds a pickled object, not an array");
  return f.tensors.begin()->second;
}

TensorFile parse_npz(const FileBytes& bytes) {
  ZipReader zip(bytes);
  TensorFile f;
  f.path = bytes.name;
  f.format = "npz";
  for (const auto& e : zip.entries()) {
    SH_CHECK(e.name.size() > 4 && e.name.compare(e.name.size() - 4, 4, ".npy") == 0, bytes.name, ": entry '", e.name,
             "' is not an .npy file");
    const std::string key = e.name.substr(0, e.name.size() - 4);
    TensorFile entry = parse_npy(zip.read(e), key);
    for (auto& [name, t] : entry.tensors) {
      SH_CHECK(!f.tensors.count(name), bytes.name, ": two arrays are named '", name, "'");
      f.tensors[name] = t;
    }
    for (auto& [name, d] : entry.stored_dtypes) f.stored_dtypes[name] = d;
    for (auto& [name, m] : entry.metadata) f.metadata[name] = m;
  }
  return f;
}

TensorFile read_npz(const std::string& path) { return parse_npz(map_file(path)); }

// ---- writing

namespace {

std::string npy_header(const Tensor& t) {
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape()[i]);
  if (t.shape().size() == 1) shape += ",";
  shape += ")";
  std::string dict = "{'descr': '" + numpy_descr(t.dtype()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic, version, length, dict and a newline, padded with spaces to a multiple of 64 bytes
  // so that the data is aligned.
  const bool v2 = dict.size() + 1 + 10 > 65535;
  const size_t prefix = v2 ? 12 : 10;
  const size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::string out(kMagic, kMagicLen);
  out.push_back(char(v2 ? 2 : 1));
  out.push_back(0);
  const size_t len = dict.size();
  for (size_t i = 0; i < (v2 ? 4u : 2u); ++i) out.push_back(char(len >> (8 * i)));
  return out + dict;
}

Tensor writable(const Tensor& t, const std::string& path) {
  SH_CHECK(t.defined(), path, ": cannot write an undefined tensor");
  return t.to(Device::cpu()).contiguous();
}

}  // namespace

void write_npy(const std::string& path, const Tensor& tensor) {
  const Tensor t = writable(tensor, path);
  std::string header;
  try {
    header = npy_header(t);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  FileWriter out(path);
  out.write(header);
  out.write(t.raw_data(), size_t(t.numel()) * dtype_size(t.dtype()));
  out.commit();
}

void write_npz(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  ZipWriter zip(path);
  for (auto& [name, tensor] : tensors) {
    SH_CHECK(!name.empty(), path, ": cannot write an array with an empty name");
    const Tensor t = writable(tensor, path);
    std::string header;
    try {
      header = npy_header(t);
    } catch (const Error& e) {
      throw Error(path + ": array '" + name + "': " + e.what());
    }
    zip.add(name + ".npy", {{header.data(), header.size()}, {t.raw_data(), size_t(t.numel()) * dtype_size(t.dtype())}});
  }
  zip.finish();
}

}  // namespace shallow
