#include <nlohmann/json.hpp>

#include "engine/allocator.h"
#include "tests/weights_import/weights_test_util.h"
#include "weights_import/safetensors.h"

namespace shallow::testing {
namespace {

TEST(Safetensors, ReadsEveryDtypeWrittenByTheLibrary) {
  const SafetensorsFile f = read_safetensors(weights_fixture("all_dtypes.safetensors"));
  EXPECT_EQ(f.format, "safetensors");
  EXPECT_TRUE(matches_pattern(f.tensors.at("f64"), DType::f64, {3, 5}, 'f'));
  EXPECT_TRUE(matches_pattern(f.tensors.at("f32"), DType::f32, {3, 5}, 'f'));
  EXPECT_TRUE(matches_pattern(f.tensors.at("f16"), DType::f16, {3, 5}, 'f'));
  EXPECT_TRUE(matches_pattern(f.tensors.at("bf16"), DType::bf16, {3, 5}, 'f'));
  EXPECT_TRUE(matches_pattern(f.tensors.at("i64"), DType::i64, {3, 5}, 'i'));
  EXPECT_TRUE(matches_pattern(f.tensors.at("i32"), DType::i32, {3, 5}, 'i'));
  EXPECT_TRUE(matches_pattern(f.tensors.at("i16"), DType::i32, {3, 5}, 'i'));  // widened
  EXPECT_TRUE(matches_pattern(f.tensors.at("i8"), DType::i32, {3, 5}, 'i'));   // widened
  EXPECT_TRUE(matches_pattern(f.tensors.at("u8"), DType::u8, {3, 5}, 'u'));
  EXPECT_TRUE(matches_pattern(f.tensors.at("bool"), DType::u8, {3, 5}, 'b'));
  EXPECT_EQ(f.tensors.at("scalar_f32").shape(), Shape{});
  EXPECT_EQ(f.tensors.at("scalar_f32").item(), 2.5);
  EXPECT_EQ(f.tensors.at("empty_f32").shape(), (Shape{0, 4}));
  EXPECT_EQ(f.metadata.at("purpose"), "weights import tests");
  EXPECT_EQ(f.stored_dtypes.at("i16"), "i16");
  EXPECT_EQ(f.stored_dtypes.at("bool"), "bool");
  EXPECT_EQ(f.stored_dtypes.count("f32"), 0u);
  EXPECT_EQ(f.tensors.size(), 12u);
}

TEST(Safetensors, TensorsPointIntoTheMappedFile) {
  const std::string path = weights_fixture("all_dtypes.safetensors");
  const std::vector<uint8_t> raw = file_contents(path);
  const SafetensorsFile f = read_safetensors(path);
  // A zero-copy tensor's bytes equal the file's bytes at its offset, and the storage is not
  // allocator memory: writing through it must not touch the file (private mapping).
  Tensor t = f.tensors.at("f32");
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  const float first = t.to_vector<float>()[0];
  t.fill_(7.0);
  EXPECT_EQ(t.to_vector<float>()[0], 7.0f);
  EXPECT_EQ(file_contents(path), raw);
  EXPECT_EQ(read_safetensors(path).tensors.at("f32").to_vector<float>()[0], first);
  EXPECT_NE(p, nullptr);
}

TEST(Safetensors, AsStoredDtypesAllocateNothing) {
  // expected.safetensors holds f32, f64 and f16 only: reading it must not allocate tensor
  // memory, while the widened i16 and i8 of all_dtypes.safetensors must.
  const int64_t before = memory_stats().allocations;
  const SafetensorsFile f = read_safetensors(weights_fixture("expected.safetensors"));
  EXPECT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(memory_stats().allocations, before);
  const SafetensorsFile g = read_safetensors(weights_fixture("all_dtypes.safetensors"));
  EXPECT_EQ(memory_stats().allocations, before + 2);
}

// Resident memory of this process, in bytes.
int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * int64_t(::sysconf(_SC_PAGESIZE));
}

TEST(Safetensors, OpeningReadsNothingAndTouchingReadsOnlyWhatIsTouched) {
  // Two 24 MB tensors: opening the file maps it, and only the pages of the tensor that is read
  // become resident.
  ScratchDir dir;
  const std::string path = dir.file("big.safetensors");
  {
    const Tensor zeros = Tensor::zeros({6 << 20});
    write_safetensors(path, {{"a", zeros}, {"b", zeros}});
  }
  const int64_t mb = 1 << 20;
  const int64_t before = resident_bytes();
  const SafetensorsFile f = read_safetensors(path);
  const int64_t opened = resident_bytes();
  EXPECT_LT(opened - before, 8 * mb);
  const Tensor a = f.tensors.at("a");
  const auto* p = static_cast<const uint8_t*>(a.raw_data());
  volatile uint8_t sum = 0;
  for (int64_t i = 0; i < a.numel() * 4; i += 4096) sum = uint8_t(sum + p[i]);
  const int64_t touched = resident_bytes();
  EXPECT_GT(touched - opened, 20 * mb);
  EXPECT_LT(touched - opened, 40 * mb);
}

TEST(Safetensors, RoundTripsEveryEngineDtype) {
  ScratchDir dir;
  std::map<std::string, Tensor> tensors;
  const DType dtypes[] = {DType::f64, DType::f32, DType::f16, DType::bf16, DType::i64, DType::i32, DType::u8};
  for (DType dt : dtypes) {
    std::vector<double> v(15);
    for (int i = 0; i < 15; ++i) v[size_t(i)] = pattern_value(i, dt == DType::u8 ? 'u' : 'f');
    if (dt == DType::i64 || dt == DType::i32)
      for (int i = 0; i < 15; ++i) v[size_t(i)] = pattern_value(i, 'i');
    tensors[std::string("t_") + dtype_name(dt)] = Tensor::from_vector(v, {3, 5}).to(dt);
  }
  // Non-contiguous and odd-sized inputs are written in logical order.
  tensors["transposed"] = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}).t();
  tensors["odd_u8"] = Tensor::from_vector(std::vector<uint8_t>{1, 2, 3}, {3});
  tensors["empty"] = Tensor::zeros({0, 2});
  tensors["scalar"] = Tensor::scalar(-1.5, DType::f64);
  const std::string path = dir.file("round.safetensors");
  write_safetensors(path, tensors, {{"k", "v"}});

  const SafetensorsFile back = read_safetensors(path);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (auto& [name, t] : tensors) EXPECT_TRUE(bit_equal(back.tensors.at(name), t)) << name;
  EXPECT_EQ(back.metadata.at("k"), "v");
  // Every tensor starts aligned to its element size: all are read in place.
  for (auto& [name, t] : back.tensors)
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % dtype_size(t.dtype()), 0u) << name;
}

TEST(Safetensors, RejectsReservedAndUndefinedNames) {
  ScratchDir dir;
  EXPECT_TRUE(throws_error([&] { write_safetensors(dir.file("a.safetensors"), {{"__metadata__", Tensor::zeros({1})}}); },
                           {"a.safetensors", "__metadata__"}));
  EXPECT_TRUE(throws_error([&] { write_safetensors(dir.file("b.safetensors"), {{"x", Tensor()}}); },
                           {"b.safetensors", "undefined"}));
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.safetensors")));
  EXPECT_TRUE(throws_error([&] { write_safetensors("/nonexistent-dir/x.safetensors", {{"x", Tensor::zeros({1})}}); },
                           {"/nonexistent-dir/x.safetensors", "cannot create"}));
}

TEST(Safetensors, MissingFileAndDirectory) {
  EXPECT_TRUE(throws_error([] { read_safetensors("/nonexistent/file.safetensors"); },
                           {"/nonexistent/file.safetensors", "cannot open"}));
  EXPECT_TRUE(throws_error([] { read_safetensors(fixture_path("weights")); }, {"directory"}));
}

// ---- malformed files

// A file made of a header (serialized as given) and `data_bytes` zero bytes of data.
FileBytes make_file(const std::string& header, size_t data_bytes, uint64_t declared_len = UINT64_MAX) {
  std::vector<uint8_t> b(8);
  const uint64_t len = declared_len == UINT64_MAX ? header.size() : declared_len;
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(len >> (8 * i));
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  return bytes_in_memory(std::move(b), "bad.safetensors");
}

std::string one_tensor(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"x":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}";
}

TEST(SafetensorsMalformed, TruncatedAtEveryOffset) {
  const std::vector<uint8_t> good = file_contents(weights_fixture("all_dtypes.safetensors"));
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + std::ptrdiff_t(n));
    EXPECT_TRUE(throws_error([&] { parse_safetensors(bytes_in_memory(cut, "cut.safetensors")); }, {"cut.safetensors"}))
        << "truncated to " << n << " bytes";
  }
}

TEST(SafetensorsMalformed, CorruptedHeaderLength) {
  const std::vector<uint8_t> good = file_contents(weights_fixture("all_dtypes.safetensors"));
  for (uint64_t len : {uint64_t(0), uint64_t(1), uint64_t(7), uint64_t(good.size()), UINT64_MAX, uint64_t(1) << 40,
                       uint64_t(200'000'000)}) {
    std::vector<uint8_t> b = good;
    for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(len >> (8 * i));
    EXPECT_TRUE(throws_error([&] { parse_safetensors(bytes_in_memory(b, "len.safetensors")); }, {"len.safetensors"}))
        << len;
  }
  // A header length one byte short or long breaks the JSON or the data section.
  for (int delta : {-1, 1}) {
    std::vector<uint8_t> b = good;
    b[0] = uint8_t(b[0] + delta);
    EXPECT_TRUE(throws_error([&] { parse_safetensors(bytes_in_memory(b, "off.safetensors")); }, {"off.safetensors"}));
  }
}

TEST(SafetensorsMalformed, EachProblemIsNamed) {
  struct Case {
    std::string header;
    size_t data;
    std::string expect;
  };
  const Case cases[] = {
      {"[1,2]", 0, "does not start with '{'"},
      {"{\"x\":", 0, "not valid JSON"},
      {"{\"x\":3}", 0, "not a JSON object"},
      {one_tensor("F32", "[2]", "[0,8]"), 4, "past the end"},
      {one_tensor("F32", "[2]", "[4,12]"), 12, "(gap)"},
      {one_tensor("F32", "[2]", "[8,0]"), 8, "end before they begin"},
      {one_tensor("F32", "[3]", "[0,8]"), 8, "needs 12 bytes"},
      {one_tensor("F32", "[2]", "[0,8]"), 12, "cover 8 bytes of the 12"},
      {one_tensor("C64", "[2]", "[0,16]"), 16, "unsupported dtype C64"},
      {one_tensor("F32", "[-2]", "[0,8]"), 8, "non-negative integer"},
      {one_tensor("F32", "[2.5]", "[0,8]"), 8, "non-negative integer"},
      {one_tensor("F32", "[4294967296,4294967296]", "[0,8]"), 8, "x"},
      {one_tensor("F32", "[4294967296,4294967296,4294967296]", "[0,8]"), 8, "64 bits"},
      {one_tensor("F32", "[2]", "[0]"), 8, "data_offsets"},
      {one_tensor("F32", "[2]", "[0,-8]"), 8, "data_offsets"},
      {R"({"x":{"dtype":"F32","shape":[2]}})", 8, "lacks"},
      {R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8, "unexpected field 'extra'"},
      {R"({"__metadata__":{"a":1}})", 0, "not a string"},
      {R"({"__metadata__":[]})", 0, "not an object"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       8, "(overlap)"},
  };
  for (const Case& c : cases)
    EXPECT_TRUE(throws_error([&] { parse_safetensors(make_file(c.header, c.data)); }, {"bad.safetensors", c.expect}))
        << c.header;
}

TEST(SafetensorsMalformed, GoodHandMadeFileParses) {
  // The same builder with consistent fields gives a readable file, so the cases above fail
  // for the reason they name.
  const SafetensorsFile f = parse_safetensors(make_file(one_tensor("I16", "[2,2]", "[0,8]"), 8));
  EXPECT_EQ(f.tensors.at("x").shape(), (Shape{2, 2}));
  EXPECT_EQ(f.tensors.at("x").dtype(), DType::i32);
}

TEST(SafetensorsMalformed, U64BeyondI64IsAnError) {
  FileBytes b = make_file(one_tensor("U64", "[1]", "[0,8]"), 8);
  for (size_t i = 0; i < 8; ++i) b.data[b.size - 8 + i] = 0xff;
  EXPECT_TRUE(throws_error([&] { parse_safetensors(b); }, {"bad.safetensors", "does not fit"}));
}

}  // namespace
}  // namespace shallow::testing
