#include <cmath>

#include "engine/allocator.h"
#include "tests/weights_import/weights_test_util.h"
#include "weights_import/numpy.h"
#include "weights_import/pickle.h"
#include "weights_import/safetensors.h"

namespace shallow::testing {
namespace {

using namespace std::string_literals;

struct NpyCase {
  const char* code;
  DType dtype;
  char kind;
};

const NpyCase kNpyCases[] = {{"f2", DType::f16, 'f'}, {"f4", DType::f32, 'f'}, {"f8", DType::f64, 'f'},
                             {"i1", DType::i32, 'i'}, {"i2", DType::i32, 'i'}, {"i4", DType::i32, 'i'},
                             {"i8", DType::i64, 'i'}, {"u1", DType::u8, 'u'},  {"u2", DType::i32, 'u'},
                             {"u4", DType::i64, 'u'}, {"u8", DType::i64, 'u'}, {"b1", DType::u8, 'b'}};

TEST(Npy, EveryNumericDtype) {
  for (const NpyCase& c : kNpyCases) {
    const TensorFile f = read_npy(weights_fixture(std::string("npy/") + c.code + ".npy"));
    EXPECT_EQ(f.format, "npy");
    EXPECT_TRUE(matches_pattern(f.tensors.at(c.code), c.dtype, {3, 5}, c.kind)) << c.code;
  }
}

TEST(Npy, BigEndianIsSwapped) {
  const NpyCase cases[] = {{"f4", DType::f32, 'f'}, {"i8", DType::i64, 'i'}, {"f8", DType::f64, 'f'},
                           {"u2", DType::i32, 'u'}};
  for (const NpyCase& c : cases) {
    const std::string name = std::string("be_") + c.code;
    const TensorFile f = read_npy(weights_fixture("npy/" + name + ".npy"));
    EXPECT_TRUE(matches_pattern(f.tensors.at(name), c.dtype, {3, 5}, c.kind)) << name;
    EXPECT_EQ(f.stored_dtypes.at(name), std::string(">") + c.code);
  }
}

TEST(Npy, FortranOrderIsAColumnMajorView) {
  const Tensor a = read_npy_array(weights_fixture("npy/fortran_f4.npy"));
  EXPECT_TRUE(matches_pattern(a, DType::f32, {3, 5}, 'f'));
  EXPECT_EQ(a.strides(), (Shape{1, 3}));
  const Tensor b = read_npy_array(weights_fixture("npy/fortran_3d_f8.npy"));
  EXPECT_TRUE(matches_pattern(b, DType::f64, {2, 3, 4}, 'f'));
  EXPECT_EQ(b.strides(), (Shape{1, 2, 6}));
}

TEST(Npy, HeaderVersionsScalarsAndEmptyArrays) {
  EXPECT_TRUE(matches_pattern(read_npy_array(weights_fixture("npy/v2_f4.npy")), DType::f32, {3, 5}, 'f'));
  EXPECT_TRUE(matches_pattern(read_npy_array(weights_fixture("npy/v3_f4.npy")), DType::f32, {3, 5}, 'f'));
  const Tensor s = read_npy_array(weights_fixture("npy/scalar_f8.npy"));
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.item(), 2.5);
  EXPECT_EQ(read_npy_array(weights_fixture("npy/empty_f4.npy")).shape(), (Shape{0, 3}));
}

TEST(Npy, RandomValuesBitForBit) {
  const SafetensorsFile expected = read_safetensors(weights_fixture("expected.safetensors"));
  EXPECT_TRUE(bit_equal(read_npy_array(weights_fixture("npy/random_f32.npy")), expected.tensors.at("random_f32")));
}

TEST(Npy, ReadInPlaceFromTheMappedFile) {
  const int64_t before = memory_stats().allocations;
  const Tensor a = read_npy_array(weights_fixture("npy/f4.npy"));
  EXPECT_EQ(memory_stats().allocations, before);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw_data()) % 64, 0u);  // numpy pads headers to 64 bytes
}

TEST(Npy, WritesEveryDtypeAndReadsItBack) {
  ScratchDir dir;
  for (DType dt : {DType::f64, DType::f32, DType::f16, DType::i64, DType::i32, DType::u8}) {
    std::vector<double> v(15);
    for (int i = 0; i < 15; ++i) v[size_t(i)] = pattern_value(i, dt == DType::u8 ? 'u' : 'i');
    const Tensor t = Tensor::from_vector(v, {3, 5}).to(dt);
    const std::string path = dir.file(std::string("a_") + dtype_name(dt) + ".npy");
    write_npy(path, t);
    const Tensor back = read_npy_array(path);
    EXPECT_TRUE(bit_equal(back, t)) << dtype_name(dt);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(back.raw_data()) % 64, 0u);
  }
  // Non-contiguous input, scalars and empty arrays.
  const Tensor tr = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}).t();
  write_npy(dir.file("t.npy"), tr);
  EXPECT_TRUE(bit_equal(read_npy_array(dir.file("t.npy")), tr));
  write_npy(dir.file("s.npy"), Tensor::scalar(3.0, DType::f64));
  EXPECT_EQ(read_npy_array(dir.file("s.npy")).shape(), Shape{});
  write_npy(dir.file("e.npy"), Tensor::zeros({0, 7}));
  EXPECT_EQ(read_npy_array(dir.file("e.npy")).shape(), (Shape{0, 7}));
  EXPECT_TRUE(throws_error([&] { write_npy(dir.file("b.npy"), Tensor::zeros({2}, DType::bf16)); },
                           {"b.npy", "bfloat16"}));
  // The file is named after its stem.
  EXPECT_TRUE(read_npy(dir.file("t.npy")).tensors.count("t"));
}

TEST(Npy, HeaderMatchesNumpysOwnLayout) {
  // np.save of a (3, 5) float32 array writes exactly this header.
  ScratchDir dir;
  write_npy(dir.file("h.npy"), Tensor::zeros({3, 5}));
  const std::vector<uint8_t> ours = file_contents(dir.file("h.npy"));
  const std::vector<uint8_t> numpys = file_contents(weights_fixture("npy/f4.npy"));
  EXPECT_EQ(std::vector<uint8_t>(ours.begin(), ours.begin() + 128), std::vector<uint8_t>(numpys.begin(), numpys.begin() + 128));
}

// ---- NumPy dicts, as THINGS-EEG2 stores its preprocessed data

class ThingsEegLike : public ::testing::TestWithParam<const char*> {};

TEST_P(ThingsEegLike, DictKeysArraysAndNames) {
  const TensorFile f = read_npy(weights_fixture(GetParam()));
  EXPECT_TRUE(matches_pattern(f.tensors.at("preprocessed_eeg_data"), DType::f32, {4, 2, 3, 5}, 'f'));
  const Tensor times = f.tensors.at("times");
  ASSERT_EQ(times.shape(), Shape{5});
  const std::vector<double> t = times.to_vector<double>();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(t[size_t(i)], -0.5 + 0.25 * i) << i;
  EXPECT_EQ(f.metadata.at("ch_names"), R"(["Fp1","Fp2","Fz"])");
  // The object itself, for callers that walk it.
  ASSERT_TRUE(f.object);
  const pickle::Object* root = f.object->root();
  ASSERT_TRUE(root->is(pickle::Kind::dict));
  const pickle::Object* names = root->get("ch_names");
  ASSERT_TRUE(names && names->is(pickle::Kind::list));
  EXPECT_EQ(names->items.at(2)->text, "Fz");
  EXPECT_EQ(root->get("preprocessed_eeg_data")->tensor.shape(), (Shape{4, 2, 3, 5}));
}

INSTANTIATE_TEST_SUITE_P(Files, ThingsEegLike,
                         ::testing::Values("things_eeg_like.npy", "things_eeg_like_np1.npy",
                                           "things_eeg_like_pickle.npy", "things_eeg_like_pickle_p2.npy",
                                           "things_eeg_like_pickle_p5.npy"));

TEST(ThingsEegLike, FormatsAreReported) {
  EXPECT_EQ(read_npy(weights_fixture("things_eeg_like.npy")).format, "npy (pickled object)");
  EXPECT_EQ(read_npy(weights_fixture("things_eeg_like_pickle.npy")).format, "pickle");
  EXPECT_TRUE(throws_error([] { read_npy_array(weights_fixture("things_eeg_like.npy")); },
                           {"things_eeg_like.npy", "pickled object"}));
}

TEST(NumpyObjects, ScalarsTextArraysObjectArraysAndNestedDicts) {
  const TensorFile f = read_npy(weights_fixture("numpy_objects.npy"));
  EXPECT_EQ(f.metadata.at("sfreq"), "100.0");
  EXPECT_EQ(f.metadata.at("n_reps"), "-4");
  EXPECT_EQ(f.metadata.at("flag"), "true");
  EXPECT_EQ(f.metadata.at("label"), "test");
  EXPECT_EQ(f.metadata.at("names"), "[\"Fp1\",\"Oz\",\"T\xc3\xa4\"]");  // UCS-4 text to UTF-8
  EXPECT_EQ(f.metadata.at("nested.b"), R"([0.5,"x"])");
  EXPECT_EQ(f.metadata.at("objects.1"), "null");
  EXPECT_EQ(f.tensors.at("nested.a").to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(f.tensors.at("objects.0").to_vector<double>(), (std::vector<double>{0.0, 1.0}));
  const pickle::Object* root = f.object->root();
  EXPECT_TRUE(root->get("sfreq")->is(pickle::Kind::floating));
  EXPECT_EQ(root->get("n_reps")->integer, -4);
  EXPECT_TRUE(root->get("flag")->boolean);
  EXPECT_EQ(root->get("names")->items.at(1)->text, "Oz");
}

// ---- .npz

TEST(Npz, StoredAndDeflated) {
  const SafetensorsFile expected = read_safetensors(weights_fixture("expected.safetensors"));
  for (const char* name : {"arrays.npz", "arrays_compressed.npz"}) {
    const TensorFile f = read_npz(weights_fixture(name));
    EXPECT_EQ(f.format, "npz");
    ASSERT_EQ(f.tensors.size(), 3u) << name;
    EXPECT_TRUE(matches_pattern(f.tensors.at("pattern_f4"), DType::f32, {3, 5}, 'f')) << name;
    EXPECT_TRUE(matches_pattern(f.tensors.at("pattern_i8"), DType::i64, {4}, 'i')) << name;
    EXPECT_TRUE(bit_equal(f.tensors.at("random_f32"), expected.tensors.at("random_f32"))) << name;
  }
}

TEST(Npz, RoundTrip) {
  ScratchDir dir;
  std::map<std::string, Tensor> tensors = {
      {"a", Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3})},
      {"b", Tensor::from_vector(std::vector<int64_t>{7, -8}, {2})},
      {"layer.0", Tensor::from_vector(std::vector<uint8_t>{1, 2, 3}, {3, 1}).t()},
      {"empty", Tensor::zeros({0})}};
  write_npz(dir.file("r.npz"), tensors);
  const TensorFile back = read_npz(dir.file("r.npz"));
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (auto& [name, t] : tensors) EXPECT_TRUE(bit_equal(back.tensors.at(name), t)) << name;
}

// ---- malformed files

TEST(NumpyMalformed, TruncatedAtEveryOffset) {
  for (const char* name : {"npy/f4.npy", "npy/fortran_3d_f8.npy", "things_eeg_like.npy", "things_eeg_like_np1.npy",
                           "things_eeg_like_pickle.npy", "things_eeg_like_pickle_p2.npy",
                           "things_eeg_like_pickle_p5.npy"}) {
    const std::vector<uint8_t> good = file_contents(weights_fixture(name));
    for (size_t n = 0; n < good.size(); ++n) {
      std::vector<uint8_t> cut(good.begin(), good.begin() + std::ptrdiff_t(n));
      EXPECT_TRUE(throws_error([&] { parse_npy(bytes_in_memory(cut, "cut.npy"), "x"); }, {"cut.npy"}))
          << name << " truncated to " << n << " bytes";
    }
  }
  for (const char* name : {"arrays.npz", "arrays_compressed.npz"}) {
    const std::vector<uint8_t> good = file_contents(weights_fixture(name));
    for (size_t n = 0; n < good.size(); ++n) {
      std::vector<uint8_t> cut(good.begin(), good.begin() + std::ptrdiff_t(n));
      EXPECT_TRUE(throws_error([&] { parse_npz(bytes_in_memory(cut, "cut.npz")); }, {"cut.npz"}))
          << name << " truncated to " << n << " bytes";
    }
  }
}

TEST(NumpyMalformed, EveryByteFlippedNeverCrashes) {
  for (const char* name : {"things_eeg_like.npy", "things_eeg_like_np1.npy", "things_eeg_like_pickle_p2.npy",
                           "arrays.npz", "arrays_compressed.npz", "npy/fortran_3d_f8.npy"}) {
    const std::vector<uint8_t> good = file_contents(weights_fixture(name));
    const bool npz = std::string(name).find(".npz") != std::string::npos;
    for (size_t i = 0; i < good.size(); ++i) {
      for (uint8_t x : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
        std::vector<uint8_t> bad = good;
        bad[i] ^= x;
        try {
          if (npz) parse_npz(bytes_in_memory(bad, "flip.npz"));
          else parse_npy(bytes_in_memory(bad, "flip.npy"), "x");
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("flip.np"), std::string::npos) << e.what();
        }
      }
    }
  }
}

// An .npy file with the given header text and `data` bytes of zeros.
FileBytes npy_with_header(const std::string& header, size_t data, int version = 1) {
  std::string b = "\x93NUMPY"s;
  b.push_back(char(version));
  b.push_back(0);
  const size_t n = header.size();
  for (int i = 0; i < (version == 1 ? 2 : 4); ++i) b.push_back(char(n >> (8 * i)));
  b += header;
  b.append(data, '\0');
  return bytes_in_memory(std::vector<uint8_t>(b.begin(), b.end()), "bad.npy");
}

TEST(NumpyMalformed, HeaderProblemsAreNamed) {
  struct Case {
    std::string header;
    size_t data;
    std::string expect;
  };
  const Case cases[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 4, "needs 8 bytes"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12, "takes 8 bytes"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, "'<c8' is not supported"},
      {"{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (2,), }", 16, "not supported"},
      {"{'descr': '<f3', 'fortran_order': False, 'shape': (2,), }", 6, "'<f3'"},
      {"{'descr': '<U4', 'fortran_order': False, 'shape': (2,), }", 32, "cannot become tensors"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "non-negative"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8, "overflows"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 8, "64 bits"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8, "64 bits"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 1073741824), }", 8, "needs"},
      {"{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }", 8, "neither True nor False"},
      {"{'descr': '<f4', 'shape': (2,), }", 8, "lacks"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", 8, "unexpected key 'extra'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 8, "after the closing"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", 8, "expected"},
      {"", 8, "expected '{'"},
  };
  for (const Case& c : cases)
    EXPECT_TRUE(throws_error([&] { parse_npy(npy_with_header(c.header, c.data), "x"); }, {"bad.npy", c.expect}))
        << c.header;
  // The same builder with a consistent header reads, so the cases fail for the reason named.
  EXPECT_EQ(parse_npy(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8), "x")
                .tensors.at("x").shape(),
            Shape{2});
  EXPECT_TRUE(throws_error([&] { parse_npy(npy_with_header("{}", 0, 4), "x"); }, {"bad.npy", "version 4.0"}));
  std::vector<uint8_t> not_npy = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_TRUE(throws_error([&] { parse_npy(bytes_in_memory(not_npy, "t.npy"), "x"); }, {"t.npy", "not an .npy file"}));
}

TEST(NumpyMalformed, CorruptDeflateAndMissingEntries) {
  // Flip a byte inside the first deflated entry: inflate or the CRC check must catch it.
  std::vector<uint8_t> z = file_contents(weights_fixture("arrays_compressed.npz"));
  z[90] ^= 0x10;
  EXPECT_TRUE(throws_error([&] { parse_npz(bytes_in_memory(z, "z.npz")); }, {"z.npz"}));
  // An entry that is not an .npy file.
  const auto renamed = replaced(file_contents(weights_fixture("arrays.npz")), "pattern_f4.npy", "pattern_f4.txt");
  EXPECT_TRUE(throws_error([&] { parse_npz(bytes_in_memory(renamed, "e.npz")); }, {"e.npz", "not an .npy file"}));
  // A lying central directory offset.
  std::vector<uint8_t> lying = file_contents(weights_fixture("arrays.npz"));
  lying[lying.size() - 6] ^= 0x40;
  EXPECT_TRUE(throws_error([&] { parse_npz(bytes_in_memory(lying, "o.npz")); }, {"o.npz"}));
}

TEST(NumpyMalformed, UnknownGlobalInADictIsNamed) {
  auto bad = replaced(file_contents(weights_fixture("things_eeg_like_pickle_p2.npy")), "_reconstruct", "_reconstrucX");
  EXPECT_TRUE(throws_error([&] { parse_npy(bytes_in_memory(bad, "g.npy"), "x"); },
                           {"g.npy", "unknown global 'numpy._core.multiarray._reconstrucX'"}));
}

}  // namespace
}  // namespace shallow::testing
