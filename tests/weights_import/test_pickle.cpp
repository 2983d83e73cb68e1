#include "tests/weights_import/weights_test_util.h"
#include "weights_import/flatten.h"
#include "weights_import/numpy_pickle.h"
#include "weights_import/pickle.h"

namespace shallow::testing {
namespace {

using namespace std::string_literals;
using pickle::Kind;
using pickle::Pickle;

std::shared_ptr<Pickle> parse(const std::string& bytes, const std::set<std::string>& allowed = {}) {
  return Pickle::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 0, "p.pkl", allowed);
}

// Flattens a pickle the way the file readers do.
TensorFile flattened(const std::string& bytes) {
  auto p = parse(bytes);
  TensorFile f;
  flatten_into(f, *p, p->root(), "root");
  return f;
}

TEST(Pickle, ScalarsOfEveryProtocol) {
  // Protocol 0 text opcodes.
  EXPECT_EQ(parse("I42\n.")->root()->integer, 42);
  EXPECT_EQ(parse("I01\n.")->root()->boolean, true);
  EXPECT_EQ(parse("L-12345678901L\n.")->root()->integer, -12345678901);
  EXPECT_EQ(parse("F2.5\n.")->root()->floating, 2.5);
  EXPECT_EQ(parse("S'a\\'b\\x41'\n.")->root()->text, "a'bA");
  EXPECT_EQ(parse("Vcaf\\u00e9\n.")->root()->text, "caf\xc3\xa9");
  // Binary opcodes.
  EXPECT_EQ(parse("\x80\x02J\xff\xff\xff\xff."s)->root()->integer, -1);
  EXPECT_EQ(parse("\x80\x02M\x34\x12."s)->root()->integer, 0x1234);
  EXPECT_EQ(parse("\x80\x02\x8a\x02\x00\x80."s)->root()->integer, -32768);  // LONG1, sign-extended
  EXPECT_EQ(parse("\x80\x02\x8a\x00."s)->root()->integer, 0);
  EXPECT_EQ(parse("\x80\x02G\x40\x04\x00\x00\x00\x00\x00\x00."s)->root()->floating, 2.5);
  EXPECT_TRUE(parse("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."s)->root()->is(Kind::big_integer));
  EXPECT_EQ(parse("\x80\x04\x8c\x03" "abc\x94."s)->root()->text, "abc");
  EXPECT_EQ(parse("\x80\x03\x43\x02\x00\x01."s)->root()->text, "\x00\x01"s);
  EXPECT_EQ(parse("\x80\x05\x96\x01\x00\x00\x00\x00\x00\x00\x00z."s)->root()->text, "z");
  // Protocol 2 bytes: _codecs.encode(latin-1 text, 'latin1').
  const auto b = parse("\x80\x02" "c_codecs\nencode\nX\x02\x00\x00\x00\xc3\xbfX\x06\x00\x00\x00latin1\x86R."s);
  EXPECT_TRUE(b->root()->is(Kind::bytes));
  EXPECT_EQ(b->root()->text, "\xff");
}

TEST(Pickle, ContainersMemoAndFrames) {
  // {'a': [1, 2], 'b': (True, None)} with memo references, protocol 4 framing.
  const auto p = parse("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01" "a\x94]\x94(K\x01K\x02" "e\x8c\x01" "b\x88N\x86u."s);
  const pickle::Object* root = p->root();
  ASSERT_TRUE(root->is(Kind::dict));
  EXPECT_EQ(root->get("a")->items.size(), 2u);
  EXPECT_EQ(root->get("b")->items[0]->boolean, true);
  EXPECT_EQ(root->get("missing"), nullptr);
  // Sets and OrderedDict.
  EXPECT_TRUE(parse("\x80\x04\x8f(K\x01K\x02\x90."s)->root()->is(Kind::set));
  EXPECT_TRUE(parse("\x80\x02" "ccollections\nOrderedDict\n)R."s)->root()->is(Kind::dict));
  // The end offset of a stream is reported, so that streams can follow one another.
  size_t end = 0;
  const std::string two = "K\x01.K\x02."s;
  Pickle::parse(reinterpret_cast<const uint8_t*>(two.data()), two.size(), 0, "two", {}, &end);
  EXPECT_EQ(end, 3u);
}

TEST(Pickle, UnknownGlobalsAreRefusedByName) {
  EXPECT_TRUE(throws_error([] { parse("cos\nsystem\n(S'echo'\ntR."); }, {"p.pkl", "unknown global 'os.system'"}));
  EXPECT_TRUE(throws_error([] { parse("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93."s); },
                           {"unknown global 'builtins.eval'"}));
  // An allowed global is not called: it becomes a node for the caller to interpret.
  const auto p = parse("cmod\nf\n(K\x01tR."s, {"mod.f"});
  EXPECT_EQ(p->root()->callee(), "mod.f");
  EXPECT_TRUE(throws_error([] { parse("cmod\nf\n(K\x01tR."s, {"mod.g"}); }, {"unknown global 'mod.f'"}));
}

TEST(Pickle, OpcodesOutOfPlace) {
  struct Case {
    std::string bytes;
    std::string expect;
  };
  const Case cases[] = {
      {"}K\x01" "a."s, "APPEND on a dict"},
      {"]K\x01K\x02s."s, "SETITEM on a list"},
      {")K\x01K\x02s."s, "SETITEM on a tuple"},
      {"]u."s, "no MARK"},
      {"0."s, "stack is empty"},
      {"."s, "stack is empty"},
      {"(."s, "stack is empty"},  // STOP cannot pop across a MARK
      {"h\x05."s, "memo entry 5 was never stored"},
      {"q\x00."s, "nothing on the stack to memoize"},
      {"K\x01\x85\x86."s, "too few items"},
      {"K\x01K\x02R."s, "calls int 1, not a global"},
      {"]K\x01" "b."s, "BUILD on a list"},
      {"K\x01" "b."s, "stack is empty"},
      {"\x80\x06."s, "protocol 6"},
      {"X\xff\xff\xff\x7f"s, "runs past the end"},
      {"\x8d\xff\xff\xff\xff\xff\xff\xff\xff"s, "runs past the end"},
      {"\x8b\xff\xff\xff\xff"s, "negative LONG4 length"},
      {"\x95\xff\x00\x00\x00\x00\x00\x00\x00."s, "frame of 255 bytes"},
      {"\x97."s, "out-of-band buffers"},
      {"(i__main__\nC\n."s, "INST and OBJ"},
      {"\x82\x01."s, "extension registry"},
      {"\xff."s, "unknown opcode"},
      {"I12x\n."s, "not an integer"},
      {"I99999999999999999999\n."s, "not an integer"},
      {"I1"s, "no terminating newline"},
      {"S'abc\n."s, "not quoted"},
      {"K\x01K\x02\x93."s, "STACK_GLOBAL needs two strings"},
  };
  for (const Case& c : cases)
    EXPECT_TRUE(throws_error([&] { parse(c.bytes); }, {"p.pkl", c.expect})) << c.expect;
}

TEST(Pickle, TruncatedAtEveryOffset) {
  const std::string good = "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01" "a\x94]\x94(K\x01K\x02" "e\x8c\x01" "b\x88N\x86u."s;
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_TRUE(throws_error([&] { parse(good.substr(0, n)); }, {"p.pkl"})) << n;
}

TEST(Pickle, DeepNestingIsBoundedNotACrash) {
  // 100000 nested lists: parsing is iterative; walking the result stops at a fixed depth.
  std::string deep = std::string(100000, ']');
  deep += std::string(99999, 'a') + ".";
  const auto p = parse(deep);
  TensorFile f;
  EXPECT_TRUE(throws_error([&] { flatten_into(f, *p, p->root(), "x"); }, {"p.pkl", "nested more than"}));
}

TEST(Pickle, CyclesAndSharedReferencesAreBounded) {
  // A list that holds itself.
  EXPECT_TRUE(throws_error([] { flattened("]q\x00h\x00" "a."s); }, {"p.pkl"}));
  // A dict whose value is itself.
  EXPECT_TRUE(throws_error([] { flattened("}q\x00X\x01\x00\x00\x00kh\x00s."s); }, {"p.pkl"}));
  // l_{i+1} = [l_i, l_i], 60 times: 2^60 leaves in 500 bytes. The walk must give up quickly.
  std::string doubling = "]q\x00"s;
  for (int i = 0; i < 60; ++i) {
    doubling += "h";
    doubling.push_back(char(i));
    doubling += "h";
    doubling.push_back(char(i));
    doubling += "\x86q"s;
    doubling.push_back(char(i + 1));
  }
  doubling += ".";
  EXPECT_TRUE(throws_error([&] { flattened(doubling); }, {"p.pkl", "too many times"}));
  // One 64 KB string referenced by 4000 keys must not make 256 MB of metadata.
  std::string wide = "}q\x00X\x00\x00\x01\x00"s + std::string(65536, 'x') + "q\x01" "0(";
  for (int i = 0; i < 4000; ++i) {
    wide += "J";
    for (int k = 0; k < 4; ++k) wide.push_back(char((i >> (8 * k)) & 0xff));
    wide += "h\x01"s;
  }
  wide += "u.";
  EXPECT_TRUE(throws_error([&] { flattened(wide); }, {"p.pkl", "expands to more than"}));
}

TEST(Pickle, FlattenNamesAndPlainValues) {
  // {'a': {'b': 1, 'c': [1.5, 'x']}, 3: None}
  const TensorFile f = flattened("}(X\x01\x00\x00\x00" "a}(X\x01\x00\x00\x00" "bK\x01X\x01\x00\x00\x00" "c]"
                                 "(G\x3f\xf8\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xeuK\x03Nu."s);
  EXPECT_EQ(f.metadata.at("a.b"), "1");
  EXPECT_EQ(f.metadata.at("a.c"), R"([1.5,"x"])");
  EXPECT_EQ(f.metadata.at("3"), "null");
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_TRUE(throws_error([] { flattened("}(K\x01\x29K\x02u.}"s); }, {"p.pkl"}));  // stray bytes are fine; bad key below
  EXPECT_TRUE(throws_error([] { flattened("}()K\x02u."s); }, {"p.pkl", "dict key"}));
}

TEST(NumpyPickle, MalformedArraysAreNamed) {
  const std::string dtype_f4 = "cnumpy\ndtype\nX\x02\x00\x00\x00" "f4\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"s;
  // _reconstruct(ndarray, (0,), b'b') then BUILD (1, shape, dtype, fortran, data).
  const auto array = [&](const std::string& shape, const std::string& data) {
    return "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" "C\x01" "b\x87R(K\x01"s + shape +
           dtype_f4 + "\x89" + data + "tb."s;
  };
  const auto run = [&](const std::string& bytes) {
    auto p = parse(bytes, numpy_globals());
    resolve_numpy_objects(*p);
    return p;
  };
  const auto good = run(array("K\x02\x85", "C\x08\x00\x00\x80?\x00\x00\x00@"s));
  ASSERT_TRUE(good->root()->is(Kind::tensor));
  EXPECT_EQ(good->root()->tensor.to_vector<float>(), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_TRUE(throws_error([&] { run(array("K\x03\x85", "C\x08\x00\x00\x80?\x00\x00\x00@"s)); }, {"p.pkl", "needs 12 bytes"}));
  EXPECT_TRUE(throws_error([&] { run(array("J\xff\xff\xff\xff\x85"s, "C\x08\x00\x00\x80?\x00\x00\x00@"s)); },
                           {"p.pkl", "shape holds int -1"}));
  EXPECT_TRUE(throws_error([&] { run(array("K\x02\x85", "K\x01"s)); }, {"p.pkl", "not bytes"}));
  EXPECT_TRUE(throws_error([&] { run(array("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x86"s, "C\x00"s)); },
                           {"p.pkl", "64 bits"}));
  // A zero-width text dtype cannot claim 2^40 items out of no bytes.
  const std::string dtype_u0 = "cnumpy\ndtype\nX\x02\x00\x00\x00U0\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNK\x00K\x04K\x08tb"s;
  EXPECT_TRUE(throws_error(
      [&] {
        run("cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" "C\x01" "b\x87R(K\x01\x8a\x06\x00\x00\x00\x00\x00\x01\x85"s +
            dtype_u0 + "\x89" + "C\x00tb."s);
      },
      {"p.pkl", "zero width"}));
  // An array without its BUILD.
  EXPECT_TRUE(throws_error([&] { run("cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" "C\x01" "b\x87R."s); },
                           {"p.pkl", "without its state"}));
}

}  // namespace
}  // namespace shallow::testing
