#include "weights_import/pickle.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "weights_import/byte_reader.h"

namespace shallow::pickle {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::big_integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::set: return "set";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::call: return "object";
    case Kind::persistent_id: return "persistent id";
    case Kind::tensor: return "tensor";
  }
  return "?";
}

const Object* Object::get(const std::string& key) const {
  if (kind != Kind::dict) return nullptr;
  const Object* found = nullptr;
  for (auto& [k, v] : entries)
    if (k->kind == Kind::string && k->text == key) found = v;  // the last one wins, as in Python
  return found;
}

std::string Object::callee() const {
  if (kind != Kind::call || items.empty() || items[0]->kind != Kind::global) return "";
  return items[0]->text;
}

std::string Object::describe() const {
  switch (kind) {
    case Kind::boolean: return boolean ? "True" : "False";
    case Kind::integer: return "int " + std::to_string(integer);
    case Kind::floating: return "float " + str_cat(floating);
    case Kind::string: return "str '" + (text.size() > 40 ? text.substr(0, 40) + "..." : text) + "'";
    case Kind::bytes: return "bytes of length " + std::to_string(text.size());
    case Kind::tuple: case Kind::list: case Kind::set:
      return std::string(kind_name(kind)) + " of " + std::to_string(items.size()) + " items";
    case Kind::dict: return "dict of " + std::to_string(entries.size()) + " entries";
    case Kind::global: return "global " + text;
    case Kind::call: return "object made by " + (callee().empty() ? std::string("?") : callee());
    case Kind::tensor:
      return tensor.defined() ? str_cat("tensor ", dtype_name(tensor.dtype()), " ", shape_str(tensor.shape()))
                              : std::string("tensor");
    default: return kind_name(kind);
  }
}

Object* Pickle::make(Kind kind) {
  arena_.emplace_back();
  arena_.back().kind = kind;
  return &arena_.back();
}

void Pickle::charge(size_t bytes) const {
  const size_t budget = 8 * source_bytes_ + (size_t(1) << 20);
  charged_ += bytes;
  SH_CHECK(charged_ <= budget, name_, ": the pickled object expands to more than ", budget,
           " bytes (shared references to large data)");
}

void Walk::visit(int depth) {
  SH_CHECK(depth <= kMaxDepth, name_, ": the pickled object is nested more than ", kMaxDepth, " levels deep");
  SH_CHECK(budget_ > 0, name_, ": the pickled object refers to its parts too many times (shared references)");
  --budget_;
}

namespace {

void post_order(Object* o, int depth, std::unordered_set<Object*>& seen, Walk& walk,
                const std::function<void(Object*)>& fn) {
  if (!seen.insert(o).second) return;
  walk.visit(depth);
  for (Object* c : o->items) post_order(c, depth + 1, seen, walk, fn);
  for (auto& [k, v] : o->entries) {
    post_order(k, depth + 1, seen, walk, fn);
    post_order(v, depth + 1, seen, walk, fn);
  }
  if (o->state) post_order(o->state, depth + 1, seen, walk, fn);
  fn(o);
}

}  // namespace

void visit_post_order(const Pickle& p, Object* root, const std::function<void(Object*)>& fn) {
  std::unordered_set<Object*> seen;
  Walk walk(p);
  post_order(root, 0, seen, walk, fn);
}

// ---- the machine

namespace {

// The functions this reader evaluates itself: they only rebuild plain data.
bool is_builtin_constructor(const std::string& g) {
  return g == "collections.OrderedDict" || g == "_codecs.encode" || g == "builtins.set" ||
         g == "__builtin__.set" || g == "builtins.frozenset" || g == "__builtin__.frozenset" ||
         g == "builtins.bytearray" || g == "__builtin__.bytearray";
}

// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& s, uint32_t c) {
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

}  // namespace

class Machine {
 public:
  Machine(Pickle& p, ByteReader& in, const std::set<std::string>& allowed) : p_(p), in_(in), allowed_(allowed) {}

  Object* run();

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(str_cat(in_.name(), ": pickle opcode 0x", hex(op_), " at offset ", op_pos_, ": ", why));
  }
  static std::string hex(uint8_t b) {
    const char* d = "0123456789abcdef";
    return {d[b >> 4], d[b & 15]};
  }

  Object* make(Kind k) { return p_.make(k); }
  void push(Object* o) { stack_.push_back(o); }
  Object* pop() {
    if (stack_.size() <= base()) fail("the stack is empty (opcode out of place)");
    Object* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Object* top() {
    if (stack_.size() <= base()) fail("the stack is empty (opcode out of place)");
    return stack_.back();
  }
  // The stack index of the innermost mark (items above it belong to the opcode).
  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  // Pops everything above the innermost mark, and the mark.
  std::vector<Object*> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to (opcode out of place)");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Object*> items(stack_.begin() + std::ptrdiff_t(m), stack_.end());
    stack_.resize(m);
    return items;
  }

  std::string line() {
    const uint8_t* start = in_.data() + in_.pos();
    const void* nl = std::memchr(start, '\n', in_.remaining());
    if (!nl) fail("text argument has no terminating newline");
    const size_t n = size_t(static_cast<const uint8_t*>(nl) - start);
    in_.take(n + 1, "text argument");
    std::string s(reinterpret_cast<const char*>(start), n);
    if (!s.empty() && s.back() == '\r') s.pop_back();
    return s;
  }
  std::string bytes(uint64_t n) {
    if (n > in_.remaining()) fail(str_cat("length ", n, " runs past the end of the data (", in_.remaining(), " bytes left)"));
    return std::string(reinterpret_cast<const char*>(in_.take(size_t(n), "string")), size_t(n));
  }

  Object* integer(int64_t v) {
    Object* o = make(Kind::integer);
    o->integer = v;
    return o;
  }
  Object* text(Kind k, std::string s) {
    Object* o = make(k);
    o->text = std::move(s);
    return o;
  }
  Object* sequence(Kind k, std::vector<Object*> items) {
    Object* o = make(k);
    o->items = std::move(items);
    return o;
  }
  // LONG1/LONG4: little-endian two's complement of any length.
  Object* long_bytes(const std::string& b) {
    if (b.size() <= 8) {
      uint64_t v = 0;
      for (size_t i = b.size(); i-- > 0;) v = (v << 8) | uint8_t(b[i]);
      if (!b.empty() && b.size() < 8 && (uint8_t(b.back()) & 0x80)) v |= ~uint64_t(0) << (8 * b.size());
      return integer(int64_t(v));
    }
    return text(Kind::big_integer, b);
  }
  Object* decimal(std::string s) {
    if (!s.empty() && s.back() == 'L') s.pop_back();
    if (s == "00" || s == "01") {
      Object* o = make(Kind::boolean);
      o->boolean = s == "01";
      return o;
    }
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE) fail("'" + s + "' is not an integer that fits 64 bits");
    return integer(v);
  }
  std::string python_string_literal(const std::string& s);
  std::string raw_unicode_escape(const std::string& s);

  void memo_put(uint64_t index) {
    if (stack_.empty()) fail("nothing on the stack to memoize");
    memo_[index] = stack_.back();
  }
  Object* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail(str_cat("memo entry ", index, " was never stored"));
    return it->second;
  }

  Object* global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (!is_builtin_constructor(full) && !allowed_.count(full))
      fail("unknown global '" + full + "': this reader does not run code, and does not know what it builds");
    return text(Kind::global, full);
  }
  Object* call(Object* callable, Object* args);
  void build();
  void set_items(Object* dict, const std::vector<Object*>& kv);
  void append_items(Object* list, const std::vector<Object*>& items);

  Pickle& p_;
  ByteReader& in_;
  const std::set<std::string>& allowed_;
  std::vector<Object*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Object*> memo_;
  uint8_t op_ = 0;
  size_t op_pos_ = 0;
};

std::string Machine::python_string_literal(const std::string& quoted) {
  // Protocol 0 STRING: repr() of a str, quoted with ' or ", with backslash escapes.
  if (quoted.size() < 2 || (quoted[0] != '\'' && quoted[0] != '"') || quoted.back() != quoted[0])
    fail("string argument is not quoted");
  const std::string s = quoted.substr(1, quoted.size() - 2);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 1 >= s.size()) fail("string ends in a backslash");
    const char c = s[++i];
    switch (c) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case '\\': case '\'': case '"': out.push_back(c); break;
      case 'x':
        if (i + 2 >= s.size() || !std::isxdigit(uint8_t(s[i + 1])) || !std::isxdigit(uint8_t(s[i + 2])))
          fail("bad \\x escape in string");
        out.push_back(char(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
        i += 2;
        break;
      default:
        out.push_back('\\');
        out.push_back(c);
    }
  }
  return out;
}

std::string Machine::raw_unicode_escape(const std::string& s) {
  // Protocol 0 UNICODE: latin-1 bytes, with \uXXXX and \UXXXXXXXX escapes.
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
      const size_t n = s[i + 1] == 'u' ? 4 : 8;
      if (i + 2 + n > s.size()) fail("truncated \\u escape");
      uint32_t c = 0;
      for (size_t k = 0; k < n; ++k) {
        const char h = s[i + 2 + k];
        if (!std::isxdigit(uint8_t(h))) fail("bad \\u escape");
        c = c * 16 + uint32_t(std::isdigit(uint8_t(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      if (c > 0x10FFFF) fail("code point out of range");
      append_utf8(out, c);
      i += 1 + n;
    } else {
      append_utf8(out, uint8_t(s[i]));
    }
  }
  return out;
}

Object* Machine::call(Object* callable, Object* args) {
  if (!callable->is(Kind::global)) fail("calls " + callable->describe() + ", not a global");
  if (!args->is(Kind::tuple)) fail("arguments are a " + std::string(kind_name(args->kind)) + ", not a tuple");
  const std::string& g = callable->text;
  const auto& a = args->items;
  if (g == "collections.OrderedDict") {
    Object* d = make(Kind::dict);
    if (a.empty()) return d;
    // OrderedDict([(k, v), ...]), as protocols 0 and 1 write it.
    if (a.size() != 1 || !a[0]->is_sequence()) fail("OrderedDict takes no arguments or a list of pairs");
    for (Object* kv : a[0]->items) {
      if (!kv->is_sequence() || kv->items.size() != 2) fail("OrderedDict item is not a pair");
      d->entries.emplace_back(kv->items[0], kv->items[1]);
    }
    return d;
  }
  if (g == "_codecs.encode" || g == "builtins.bytearray" || g == "__builtin__.bytearray") {
    // Protocol 2 writes bytes as _codecs.encode(latin-1 text, 'latin1').
    if (a.empty()) return text(Kind::bytes, "");
    if (a.size() != 2 || !a[0]->is(Kind::string) || !a[1]->is(Kind::string) ||
        (a[1]->text != "latin1" && a[1]->text != "latin-1"))
      fail(g + " takes a string and the encoding 'latin1'");
    std::string out;
    const std::string& s = a[0]->text;
    for (size_t i = 0; i < s.size(); ++i) {  // UTF-8 code points below 256 -> bytes
      const uint8_t c = uint8_t(s[i]);
      if (c < 0x80) {
        out.push_back(char(c));
      } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && c <= 0xC3) {
        out.push_back(char(((c & 0x1F) << 6) | (uint8_t(s[++i]) & 0x3F)));
      } else {
        fail("_codecs.encode text has a character outside latin-1");
      }
    }
    return text(Kind::bytes, out);
  }
  if (g == "builtins.set" || g == "__builtin__.set" || g == "builtins.frozenset" || g == "__builtin__.frozenset") {
    if (a.empty()) return make(Kind::set);
    if (a.size() != 1 || !a[0]->is_sequence()) fail(g + " takes a list");
    return sequence(Kind::set, a[0]->items);
  }
  Object* o = make(Kind::call);
  o->items = {callable, args};
  return o;
}

void Machine::build() {
  Object* state = pop();
  Object* target = top();
  if (target->is(Kind::call)) {
    if (target->state) fail("object is built twice");
    target->state = state;
    return;
  }
  // A dict subclass (OrderedDict) with instance attributes: torch's state_dict keeps its
  // `_metadata` this way. The attributes are not part of the mapping: drop them.
  if (target->is(Kind::dict)) return;
  fail("BUILD on a " + std::string(kind_name(target->kind)) + " (opcode out of place)");
}

void Machine::set_items(Object* dict, const std::vector<Object*>& kv) {
  if (!dict->is(Kind::dict)) fail("SETITEM on a " + std::string(kind_name(dict->kind)) + " (opcode out of place)");
  if (kv.size() % 2) fail("SETITEMS with an odd number of items");
  for (size_t i = 0; i < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
}

void Machine::append_items(Object* list, const std::vector<Object*>& items) {
  if (!list->is(Kind::list) && !list->is(Kind::set))
    fail("APPEND on a " + std::string(kind_name(list->kind)) + " (opcode out of place)");
  list->items.insert(list->items.end(), items.begin(), items.end());
}

Object* Machine::run() {
  for (;;) {
    op_pos_ = in_.pos();
    op_ = in_.u8("pickle opcode");
    switch (op_) {
      // ---- framing and control
      case 0x80: {  // PROTO
        const uint8_t v = in_.u8("protocol");
        if (v > 5) fail(str_cat("protocol ", int(v), " is newer than 5"));
        break;
      }
      case 0x95: {  // FRAME: a length hint for buffered readers
        const uint64_t n = in_.u64("frame length");
        if (n > in_.remaining()) fail(str_cat("frame of ", n, " bytes runs past the end"));
        break;
      }
      case '.': {  // STOP
        Object* result = pop();
        return result;
      }
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '0': pop(); break;                            // POP
      case '1': pop_mark(); break;                       // POP_MARK
      case '2': push(top()); break;                      // DUP

      // ---- scalars
      case 'N': push(make(Kind::none)); break;
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        Object* o = make(Kind::boolean);
        o->boolean = op_ == 0x88;
        push(o);
        break;
      }
      case 'I': push(decimal(line())); break;  // INT
      case 'L': push(decimal(line())); break;  // LONG
      case 'J': push(integer(int32_t(in_.u32("BININT")))); break;
      case 'K': push(integer(in_.u8("BININT1"))); break;
      case 'M': push(integer(in_.u16("BININT2"))); break;
      case 0x8a: push(long_bytes(bytes(in_.u8("LONG1 length")))); break;
      case 0x8b: {
        const int32_t n = int32_t(in_.u32("LONG4 length"));
        if (n < 0) fail("negative LONG4 length");
        push(long_bytes(bytes(uint64_t(n))));
        break;
      }
      case 'F': {  // FLOAT (text)
        const std::string s = line();
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0') fail("'" + s + "' is not a float");
        Object* o = make(Kind::floating);
        o->floating = v;
        push(o);
        break;
      }
      case 'G': {  // BINFLOAT: big-endian double
        const uint8_t* b = in_.take(8, "BINFLOAT");
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
        Object* o = make(Kind::floating);
        std::memcpy(&o->floating, &bits, 8);
        push(o);
        break;
      }

      // ---- strings and bytes
      case 'S': push(text(Kind::string, python_string_literal(line()))); break;
      case 'V': push(text(Kind::string, raw_unicode_escape(line()))); break;
      case 'T': {  // BINSTRING (Python 2 str)
        const int32_t n = int32_t(in_.u32("BINSTRING length"));
        if (n < 0) fail("negative BINSTRING length");
        push(text(Kind::string, bytes(uint64_t(n))));
        break;
      }
      case 'U': push(text(Kind::string, bytes(in_.u8("SHORT_BINSTRING length")))); break;
      case 'X': push(text(Kind::string, bytes(in_.u32("BINUNICODE length")))); break;
      case 0x8c: push(text(Kind::string, bytes(in_.u8("SHORT_BINUNICODE length")))); break;
      case 0x8d: push(text(Kind::string, bytes(in_.u64("BINUNICODE8 length")))); break;
      case 'B': push(text(Kind::bytes, bytes(in_.u32("BINBYTES length")))); break;
      case 'C': push(text(Kind::bytes, bytes(in_.u8("SHORT_BINBYTES length")))); break;
      case 0x8e: push(text(Kind::bytes, bytes(in_.u64("BINBYTES8 length")))); break;
      case 0x96: push(text(Kind::bytes, bytes(in_.u64("BYTEARRAY8 length")))); break;
      case 0x97: case 0x98: fail("out-of-band buffers (pickle protocol 5 buffer_callback) are not supported");

      // ---- containers
      case ')': push(make(Kind::tuple)); break;
      case 't': push(sequence(Kind::tuple, pop_mark())); break;
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        const size_t n = size_t(op_ - 0x84);
        if (stack_.size() < base() + n) fail("too few items on the stack (opcode out of place)");
        std::vector<Object*> items(stack_.end() - std::ptrdiff_t(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(sequence(Kind::tuple, std::move(items)));
        break;
      }
      case ']': push(make(Kind::list)); break;
      case 'l': push(sequence(Kind::list, pop_mark())); break;
      case 'a': {  // APPEND
        Object* v = pop();
        append_items(top(), {v});
        break;
      }
      case 'e': {  // APPENDS
        std::vector<Object*> items = pop_mark();
        append_items(top(), items);
        break;
      }
      case '}': push(make(Kind::dict)); break;
      case 'd': {  // DICT
        Object* d = make(Kind::dict);
        set_items(d, pop_mark());
        push(d);
        break;
      }
      case 's': {  // SETITEM
        Object* v = pop();
        Object* k = pop();
        set_items(top(), {k, v});
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<Object*> kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 0x8f: push(make(Kind::set)); break;  // EMPTY_SET
      case 0x90: {                              // ADDITEMS
        std::vector<Object*> items = pop_mark();
        Object* s = top();
        if (!s->is(Kind::set)) fail("ADDITEMS on a " + std::string(kind_name(s->kind)));
        s->items.insert(s->items.end(), items.begin(), items.end());
        break;
      }
      case 0x91: push(sequence(Kind::set, pop_mark())); break;  // FROZENSET

      // ---- memo
      case 'p': case 'g': {  // PUT, GET (text index)
        const std::string s = line();
        char* end = nullptr;
        const unsigned long long i = std::strtoull(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0') fail("bad memo index '" + s + "'");
        if (op_ == 'p') memo_put(i);
        else push(memo_get(i));
        break;
      }
      case 'q': memo_put(in_.u8("BINPUT index")); break;
      case 'r': memo_put(in_.u32("LONG_BINPUT index")); break;
      case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
      case 'h': push(memo_get(in_.u8("BINGET index"))); break;
      case 'j': push(memo_get(in_.u32("LONG_BINGET index"))); break;

      // ---- objects
      case 'c': {  // GLOBAL "module\nname\n"
        const std::string module = line();
        const std::string name = line();
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Object* name = pop();
        Object* module = pop();
        if (!module->is(Kind::string) || !name->is(Kind::string)) fail("STACK_GLOBAL needs two strings");
        push(global(module->text, name->text));
        break;
      }
      case 'R': {  // REDUCE
        Object* args = pop();
        Object* callable = pop();
        push(call(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        Object* args = pop();
        Object* cls = pop();
        push(call(cls, args));
        break;
      }
      case 0x92: {  // NEWOBJ_EX
        Object* kwargs = pop();
        Object* args = pop();
        Object* cls = pop();
        Object* o = call(cls, args);
        if (o->is(Kind::call)) o->items.push_back(kwargs);
        push(o);
        break;
      }
      case 'b': build(); break;
      case 'P': {  // PERSID (text)
        Object* o = make(Kind::persistent_id);
        o->items = {text(Kind::string, line())};
        push(o);
        break;
      }
      case 'Q': {  // BINPERSID
        Object* o = make(Kind::persistent_id);
        o->items = {pop()};
        push(o);
        break;
      }
      case 'i': case 'o': fail("INST and OBJ (protocol 0 and 1 instances of classes) are not supported");
      case 0x82: case 0x83: case 0x84: fail("extension registry codes (EXT1/2/4) are not supported");
      default: fail("unknown opcode");
    }
  }
}

std::shared_ptr<Pickle> Pickle::parse(const uint8_t* data, size_t size, size_t offset, const std::string& name,
                                      const std::set<std::string>& allowed_globals, size_t* end) {
  auto p = std::make_shared<Pickle>();
  p->name_ = name;
  ByteReader in(data, size, name);
  in.seek(offset, "pickle start");
  SH_CHECK(!in.at_end(), name, ": no pickle data at offset ", offset, " (truncated)");
  Machine m(*p, in, allowed_globals);
  p->root_ = m.run();
  p->source_bytes_ = in.pos() - offset;
  if (end) *end = in.pos();
  return p;
}

}  // namespace shallow::pickle
