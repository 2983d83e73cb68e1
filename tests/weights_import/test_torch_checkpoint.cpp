#include "engine/allocator.h"
#include "tests/weights_import/weights_test_util.h"
#include <cstring>

#include "weights_import/pickle.h"
#include "weights_import/safetensors.h"
#include "weights_import/torch_checkpoint.h"
#include "weights_import/zip.h"

namespace shallow::testing {
namespace {

using namespace std::string_literals;

const char* kDtypeKinds[][2] = {{"f64", "f"}, {"f32", "f"}, {"f16", "f"}, {"bf16", "f"}, {"i64", "i"},
                                {"i32", "i"}, {"i16", "i"}, {"i8", "i"},   {"u8", "u"},   {"bool", "b"}};

DType read_as(const std::string& name) {
  if (name == "i16" || name == "i8") return DType::i32;
  if (name == "bool") return DType::u8;
  return dtype_from_name(name);
}

// The globals of the fixture's pickles, to step over them in tests.
const std::set<std::string>& torch_test_globals() {
  static const std::set<std::string> g = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                          "torch._utils._rebuild_parameter", "torch.FloatStorage",
                                          "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage",
                                          "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage",
                                          "torch.CharStorage", "torch.ByteStorage", "torch.BoolStorage"};
  return g;
}

class TorchCheckpoint : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchCheckpoint, EveryTensorEqualsTheLibrarysOwn) {
  const TensorFile f = read_torch_checkpoint(weights_fixture(GetParam()));
  const SafetensorsFile expected = read_safetensors(weights_fixture("torch_expected.safetensors"));
  ASSERT_EQ(f.tensors.size(), expected.tensors.size());
  for (auto& [name, want] : expected.tensors) {
    ASSERT_TRUE(f.tensors.count(name)) << name;
    EXPECT_TRUE(bit_equal(f.tensors.at(name), want)) << name;
  }
  EXPECT_TRUE(f.tensors.count("state_dict.0.weight"));
  EXPECT_TRUE(f.tensors.count("state_dict.1.bias"));
  EXPECT_TRUE(f.tensors.count("list.1"));
}

TEST_P(TorchCheckpoint, EveryStorageDtype) {
  const TensorFile f = read_torch_checkpoint(weights_fixture(GetParam()));
  for (auto& [name, kind] : kDtypeKinds)
    EXPECT_TRUE(matches_pattern(f.tensors.at(std::string("dtypes.") + name), read_as(name), {3, 5}, kind[0])) << name;
  EXPECT_EQ(f.stored_dtypes, (std::map<std::string, std::string>{
                                 {"dtypes.i16", "i16"}, {"dtypes.i8", "i8"}, {"dtypes.bool", "bool"}}));
  EXPECT_TRUE(matches_pattern(f.tensors.at("param"), DType::f32, {2, 3}, 'f'));
}

TEST_P(TorchCheckpoint, ViewsShareOneStorageWithOffsetsAndStrides) {
  const TensorFile f = read_torch_checkpoint(weights_fixture(GetParam()));
  const Tensor base = f.tensors.at("views.base"), slice = f.tensors.at("views.slice"),
               transposed = f.tensors.at("views.transposed"), stepped = f.tensors.at("views.stepped");
  EXPECT_EQ(slice.storage(), base.storage());
  EXPECT_EQ(transposed.storage(), base.storage());
  EXPECT_EQ(stepped.storage(), base.storage());
  EXPECT_EQ(slice.offset(), 5);
  EXPECT_EQ(transposed.strides(), (Shape{1, 4}));
  EXPECT_EQ(stepped.strides(), (Shape{3}));
  EXPECT_EQ(transposed.to_vector<float>()[1], 4.0f);  // element [0, 1] of base[0:12].view(3, 4).t()
  EXPECT_EQ(stepped.to_vector<float>()[7], 21.0f);
}

TEST_P(TorchCheckpoint, PlainValuesBecomeMetadata) {
  const TensorFile f = read_torch_checkpoint(weights_fixture(GetParam()));
  EXPECT_EQ(f.metadata.at("epoch"), "7");
  EXPECT_EQ(f.metadata.at("name"), "fixture");
  EXPECT_EQ(f.metadata.at("lr"), "0.25");
}

INSTANTIATE_TEST_SUITE_P(Formats, TorchCheckpoint, ::testing::Values("torch_zip.pt", "torch_legacy.pt"));

TEST(TorchCheckpointZip, StoragesAreUsedInPlace) {
  // Of the ten storage dtypes only i16 and i8 need a converted copy.
  const int64_t before = memory_stats().allocations;
  const TensorFile f = read_torch_checkpoint(weights_fixture("torch_zip.pt"));
  EXPECT_EQ(f.format, "pytorch zip");
  EXPECT_EQ(memory_stats().allocations - before, 2);
}

// ---- malformed files

TEST(TorchCheckpointMalformed, TruncatedAtEveryOffset) {
  for (const char* name : {"torch_zip.pt", "torch_legacy.pt"}) {
    const std::vector<uint8_t> good = file_contents(weights_fixture(name));
    for (size_t n = 0; n < good.size(); ++n) {
      std::vector<uint8_t> cut(good.begin(), good.begin() + std::ptrdiff_t(n));
      EXPECT_TRUE(throws_error([&] { parse_torch_checkpoint(bytes_in_memory(cut, "cut.pt")); }, {"cut.pt"}))
          << name << " truncated to " << n << " bytes";
    }
  }
}

TEST(TorchCheckpointMalformed, EveryByteFlippedNeverCrashes) {
  // Each single-byte corruption either still reads or gives shallow::Error: no crash, no
  // other exception. (Many bytes are data, where a change is legitimately invisible.)
  for (const char* name : {"torch_zip.pt", "torch_legacy.pt"}) {
    const std::vector<uint8_t> good = file_contents(weights_fixture(name));
    for (size_t i = 0; i < good.size(); ++i) {
      std::vector<uint8_t> bad = good;
      bad[i] ^= 0x5a;
      try {
        parse_torch_checkpoint(bytes_in_memory(bad, "flipped.pt"));
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("flipped.pt"), std::string::npos) << e.what();
      }
    }
  }
}

TEST(TorchCheckpointMalformed, UnknownGlobalIsNamed) {
  for (const char* name : {"torch_zip.pt", "torch_legacy.pt"}) {
    const auto bad = replaced(file_contents(weights_fixture(name)), "_rebuild_tensor_v2", "_rebuild_tensor_v9");
    EXPECT_TRUE(throws_error([&] { parse_torch_checkpoint(bytes_in_memory(bad, "g.pt")); },
                             {"g.pt", "unknown global 'torch._utils._rebuild_tensor_v9'"}))
        << name;
  }
}

TEST(TorchCheckpointMalformed, MissingStorageEntry) {
  const auto bad = replaced(file_contents(weights_fixture("torch_zip.pt")), "torch_zip/data/0", "torch_zip/data/Z");
  EXPECT_TRUE(throws_error([&] { parse_torch_checkpoint(bytes_in_memory(bad, "m.pt")); },
                           {"m.pt", "storage '0' is missing"}));
  const auto no_pickle = replaced(file_contents(weights_fixture("torch_zip.pt")), "torch_zip/data.pkl", "torch_zip/data.pkx");
  EXPECT_TRUE(throws_error([&] { parse_torch_checkpoint(bytes_in_memory(no_pickle, "n.pt")); },
                           {"n.pt", "no <name>/data.pkl"}));
}

TEST(TorchCheckpointMalformed, LegacyStorageCountLies) {
  // The first storage's element count sits right after the key list; make it disagree.
  std::vector<uint8_t> good = file_contents(weights_fixture("torch_legacy.pt"));
  const TensorFile ok = parse_torch_checkpoint(bytes_in_memory(good, "ok.pt"));
  EXPECT_EQ(ok.format, "pytorch legacy");
  // Five pickles (magic, version, system info, object, key list), then the first storage's
  // element count: make it disagree with the pickle, or absurd.
  size_t pos = 0;
  for (int i = 0; i < 5; ++i) pickle::Pickle::parse(good.data(), good.size(), pos, "ok.pt", torch_test_globals(), &pos);
  uint64_t count = 0;
  std::memcpy(&count, good.data() + pos, 8);
  for (uint64_t lie : {count + 1, count - 1, uint64_t(1) << 62, ~uint64_t(0)}) {
    std::vector<uint8_t> bad = good;
    std::memcpy(bad.data() + pos, &lie, 8);
    EXPECT_TRUE(throws_error([&] { parse_torch_checkpoint(bytes_in_memory(bad, "c.pt")); },
                             {"c.pt", "holds " + std::to_string(lie) + " elements but the pickle says " +
                                          std::to_string(count)}));
  }
  // Extra bytes at the end are refused.
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_TRUE(throws_error([&] { parse_torch_checkpoint(bytes_in_memory(longer, "l.pt")); }, {"l.pt", "unexpected bytes"}));
}

// Hand-made zip checkpoints: a pickle of one tensor over storage "0" of `numel` floats.
std::string tensor_pickle(int numel, int offset, const std::string& size, const std::string& stride) {
  // {'t': _rebuild_tensor_v2(pid('storage', FloatStorage, '0', 'cpu', numel), offset, size, stride, False, None)}
  std::string p = "\x80\x02}X\x01\x00\x00\x00t"s;
  p += "ctorch._utils\n_rebuild_tensor_v2\n(";
  p += "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuJ"s;
  for (int i = 0; i < 4; ++i) p.push_back(char((uint32_t(numel) >> (8 * i)) & 0xff));
  p += "tQJ";
  for (int i = 0; i < 4; ++i) p.push_back(char((uint32_t(offset) >> (8 * i)) & 0xff));
  p += size + stride + "\x89NtRs.";
  return p;
}

// A tuple of BININT (4-byte) values, as pickle text.
std::string int_tuple(std::initializer_list<int64_t> v) {
  std::string p = "(";
  for (int64_t x : v) {
    if (x >= 0 && x < (int64_t(1) << 31)) {
      p += "J";
      for (int i = 0; i < 4; ++i) p.push_back(char((uint64_t(x) >> (8 * i)) & 0xff));
    } else {
      p += "\x8a\x08";
      for (int i = 0; i < 8; ++i) p.push_back(char((uint64_t(x) >> (8 * i)) & 0xff));
    }
  }
  return p + "t";
}

FileBytes zip_checkpoint(const ScratchDir& dir, const std::string& pickle, size_t storage_bytes) {
  const std::string path = dir.file("made.pt");
  ZipWriter zip(path);
  zip.add("made/data.pkl", {{pickle.data(), pickle.size()}});
  std::vector<uint8_t> data(storage_bytes, 0);
  zip.add("made/data/0", {{data.data(), data.size()}});
  zip.finish();
  return map_file(path);
}

// ---- legacy storage views, which no recent PyTorch writes: a hand-made legacy checkpoint

std::string pickled_str(const std::string& s) {
  std::string p = "X";
  for (int i = 0; i < 4; ++i) p.push_back(char((s.size() >> (8 * i)) & 0xff));
  return p + s;
}

// {'r': the whole storage 'root' of 6 floats, 'v': a tensor on its view `view`}, then 6 floats.
std::vector<uint8_t> legacy_with_view(const std::string& view) {
  std::string b = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."s;  // magic number
  b += "\x80\x02M\xe9\x03."s;                                                  // protocol 1001
  b += "\x80\x02}" + pickled_str("little_endian") + "\x88s."s;                   // system info
  const auto tensor = [](const std::string& view_metadata, const std::string& size) {
    return "ctorch._utils\n_rebuild_tensor_v2\n((" + pickled_str("storage") + "ctorch\nFloatStorage\n" +
           pickled_str("root") + pickled_str("cpu") + "K\x06" + view_metadata + "tQK\x00"s + size +
           "(K\x01t\x89NtR";
  };
  b += "\x80\x02}(" + pickled_str("r") + tensor("N", "(K\x06t") + pickled_str("v") + tensor(view, "(K\x03t") + "u.";
  b += "\x80\x02](" + pickled_str("root") + "e.";  // the storage keys
  b += "\x06\x00\x00\x00\x00\x00\x00\x00"s;
  for (float x : {0.f, 1.f, 2.f, 3.f, 4.f, 5.f}) b.append(reinterpret_cast<const char*>(&x), 4);
  return std::vector<uint8_t>(b.begin(), b.end());
}

TEST(TorchCheckpointLegacy, StorageViews) {
  const TensorFile f = parse_torch_checkpoint(
      bytes_in_memory(legacy_with_view("(" + pickled_str("view") + "K\x02K\x03t"), "views.pt"));
  EXPECT_EQ(f.tensors.at("r").to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(f.tensors.at("v").to_vector<float>(), (std::vector<float>{2, 3, 4}));
  EXPECT_TRUE(throws_error(
      [] { parse_torch_checkpoint(bytes_in_memory(legacy_with_view("(" + pickled_str("view") + "K\x04K\x03t"), "w.pt")); },
      {"w.pt", "storage view [4, +3) is outside storage 'root'"}));
  EXPECT_TRUE(throws_error(
      [] { parse_torch_checkpoint(bytes_in_memory(legacy_with_view("K\x01"), "m.pt")); },
      {"m.pt", "malformed storage view"}));
}

TEST(TorchCheckpointMalformed, HandMadeCheckpointReads) {
  ScratchDir dir;
  const TensorFile f = parse_torch_checkpoint(zip_checkpoint(dir, tensor_pickle(6, 0, int_tuple({2, 3}), int_tuple({3, 1})), 24));
  EXPECT_EQ(f.tensors.at("t").shape(), (Shape{2, 3}));
}

TEST(TorchCheckpointMalformed, LyingSizesOffsetsAndStrides) {
  ScratchDir dir;
  struct Case {
    std::string pickle;
    size_t bytes;
    std::string expect;
  };
  const Case cases[] = {
      {tensor_pickle(6, 0, int_tuple({2, 3}), int_tuple({3, 1})), 20, "needs 24"},
      {tensor_pickle(6, 0, int_tuple({2, 3}), int_tuple({3, 1})), 28, "needs 24"},
      {tensor_pickle(1 << 30, 0, int_tuple({2, 3}), int_tuple({3, 1})), 24, "needs 4294967296 bytes"},
      {tensor_pickle(6, 1, int_tuple({2, 3}), int_tuple({3, 1})), 24, "reaches element 6"},
      {tensor_pickle(6, 0, int_tuple({2, 4}), int_tuple({3, 1})), 24, "reaches element 6"},
      {tensor_pickle(6, 0, int_tuple({2, 3}), int_tuple({4, 1})), 24, "reaches element 6"},
      {tensor_pickle(6, 0, int_tuple({2, 3}), int_tuple({3})), 24, "2 dims but 1 strides"},
      {tensor_pickle(6, 0, int_tuple({2, -3}), int_tuple({3, 1})), 24, "negative size"},
      {tensor_pickle(6, 0, int_tuple({2, 3}), int_tuple({-3, 1})), 24, "negative stride"},
      {tensor_pickle(6, 0, int_tuple({2, 2}), int_tuple({int64_t(1) << 62, int64_t(1) << 62})), 24, "overflows"},
      {tensor_pickle(6, 0, int_tuple({int64_t(1) << 40, int64_t(1) << 40}), int_tuple({0, 0})), 24, "64 bits"},
  };
  for (const Case& c : cases)
    EXPECT_TRUE(throws_error([&] { parse_torch_checkpoint(zip_checkpoint(dir, c.pickle, c.bytes)); },
                             {"made.pt", c.expect}))
        << c.expect;
}

}  // namespace
}  // namespace shallow::testing
