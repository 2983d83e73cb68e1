// THINGS-EEG2 files as numpy writes them (tests/reference/things_eeg.py), their preparation
// (averaging, channel selection, z-scoring), the two protocols, and feature files matched to
// EEG rows. Every fixture value is 1000 * image + 100 * repetition + channel + time / 128.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "apps/decoding/features.h"
#include "apps/decoding/pipeline.h"
#include "apps/decoding/things_eeg.h"
#include "engine/ops.h"
#include "models/pooling.h"
#include "tests/support/fixtures.h"
#include "tests/support/errors.h"
#include "tests/support/scratch_dir.h"
#include "weights_import/numpy.h"

using namespace shallow;
using shallow::testing::ScratchDir;
using shallow::testing::throws_error;
using namespace shallow::decoding;
using shallow::testing::fixture_path;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kChannels17 = {"Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "P1",
                                              "P5", "PO7", "PO3", "POz", "PO4", "PO8", "P6", "P2"};

std::string things(const std::string& relative) { return fixture_path("things/" + relative); }

double pattern(int64_t image, double repetition, int64_t channel, int64_t time) {
  return 1000.0 * double(image) + 100.0 * repetition + double(channel) + double(time) / 128.0;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& l : lines) out << l << "\n";
}

}  // namespace

// ---- the files

class ThingsFile : public ::testing::TestWithParam<std::string> {};

TEST_P(ThingsFile, EveryFormReadsTheSameDataNamesAndTimes) {
  const std::string subject = GetParam();
  const EegRecording train = read_eeg_file(things("study17/" + subject + "/preprocessed_eeg_training.npy"));
  const EegRecording test = read_eeg_file(things("study17/" + subject + "/preprocessed_eeg_test.npy"));
  ASSERT_EQ(train.data.shape(), (Shape{3, 2, 17, 100}));
  ASSERT_EQ(test.data.shape(), (Shape{2, 2, 17, 100}));
  EXPECT_EQ(train.data.dtype(), DType::f32);  // f64 files too
  EXPECT_EQ(train.ch_names, kChannels17);
  ASSERT_EQ(train.times.size(), 100u);
  EXPECT_NEAR(train.times.front(), -0.2, 1e-12);
  EXPECT_NEAR(train.times[1] - train.times[0], 0.01, 1e-9);
  EXPECT_FALSE(train.simulated);
  const float* p = train.data.data<float>();
  for (int64_t i : {0, 2})
    for (int64_t r : {0, 1})
      for (int64_t c : {0, 9, 16})
        for (int64_t t : {0, 57, 99})
          EXPECT_EQ(p[((i * 2 + r) * 17 + c) * 100 + t], float(pattern(i, double(r), c, t)))
              << subject << " " << i << " " << r << " " << c << " " << t;
}

// sub-01: np.save by NumPy 1 (the published files); sub-02: a bare pickle stream of float64;
// sub-03: np.save by NumPy 2.
INSTANTIATE_TEST_SUITE_P(Subjects, ThingsFile, ::testing::Values("sub-01", "sub-02", "sub-03"));

TEST(ThingsFile, FullMontageAt250Hz) {
  for (const char* name : {"preprocessed_eeg_test.npy", "preprocessed_eeg_training.npy"}) {
    const EegRecording r = read_eeg_file(things(std::string("full63/sub-01/") + name));
    ASSERT_EQ(r.data.shape(), (Shape{1, 1, 63, 250})) << name;
    EXPECT_EQ(r.ch_names.front(), "Fp1");
    EXPECT_EQ(r.ch_names.back(), "F2");
    EXPECT_NEAR(r.times[1] - r.times[0], 0.004, 1e-9);
    EXPECT_EQ(r.data.data<float>()[62 * 250 + 249], float(pattern(0, 0, 62, 249)));
  }
}

TEST(ThingsFile, BadFilesSayWhatIsWrong) {
  EXPECT_TRUE(throws_error([] { read_eeg_file(things("bad/missing_key.npy")); },
                           {"missing_key.npy", "no key 'preprocessed_eeg_data'", "'eeg'", "'ch_names'"}));
  EXPECT_TRUE(throws_error([] { read_eeg_file(things("bad/nan.npy")); },
                           {"nan.npy", "NaN", "[1, 0, 5, 7]", "[2, 1, 17, 100]"}));
  EXPECT_TRUE(throws_error([] { read_eeg_file(things("bad/rank3.npy")); },
                           {"rank3.npy", "[images, repetitions, channels, times]", "[2, 17, 100]"}));
  EXPECT_TRUE(throws_error([] { read_eeg_file(things("bad/names_mismatch.npy")); },
                           {"names_mismatch.npy", "16 names", "17 channels"}));
  EXPECT_TRUE(throws_error([] { read_eeg_file(things("study17/sub-09/preprocessed_eeg_test.npy")); },
                           {"sub-09", "no such EEG file"}));
}

TEST(ThingsFile, PlainArraysAndTheSimulatedMark) {
  ScratchDir dir;
  write_npy(dir.file("eeg.npy"), Tensor::ones({2, 3, 4, 5}));
  EegRecording r = read_eeg_file(dir.file("eeg.npy"));
  EXPECT_EQ(r.ch_names, (std::vector<std::string>{"ch1", "ch2", "ch3", "ch4"}));
  EXPECT_EQ(r.times.back(), 4.0);
  EXPECT_FALSE(r.simulated);
  write_lines(dir.file("simulated.json"), {"{}"});
  EXPECT_TRUE(read_eeg_file(dir.file("eeg.npy")).simulated);
  write_npy(dir.file("ints.npy"), Tensor::zeros({2, 3, 4, 5}, DType::i32));
  EXPECT_TRUE(throws_error([&] { read_eeg_file(dir.file("ints.npy")); }, {"ints.npy", "float32 or float64", "i32"}));
}

// ---- preparation

TEST(EegSamples, RepetitionsAveragedOrKept) {
  const EegRecording r = read_eeg_file(things("study17/sub-01/preprocessed_eeg_training.npy"));
  const EegSamples avg = make_samples(r, true, {});
  ASSERT_EQ(avg.eeg.shape(), (Shape{3, 17, 100}));
  EXPECT_EQ(avg.image, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(avg.images, 3);
  EXPECT_EQ(avg.eeg.data<float>()[(2 * 17 + 5) * 100 + 3], float(pattern(2, 0.5, 5, 3)));

  const EegSamples kept = make_samples(r, false, {});
  ASSERT_EQ(kept.eeg.shape(), (Shape{6, 17, 100}));
  EXPECT_EQ(kept.image, (std::vector<int64_t>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(kept.eeg.data<float>()[(3 * 17 + 5) * 100 + 3], float(pattern(1, 1, 5, 3)));
}

TEST(EegSamples, ChannelsPickedByNameInTheGivenOrder) {
  const EegRecording r = read_eeg_file(things("full63/sub-01/preprocessed_eeg_test.npy"));
  const EegSamples s = make_samples(r, true, {"Oz", "Fp1", "F2"});
  ASSERT_EQ(s.eeg.shape(), (Shape{1, 3, 250}));
  EXPECT_EQ(s.ch_names, (std::vector<std::string>{"Oz", "Fp1", "F2"}));
  const float* p = s.eeg.data<float>();
  EXPECT_EQ(p[0 * 250 + 7], float(pattern(0, 0, 16, 7)));  // Oz is channel 16
  EXPECT_EQ(p[1 * 250 + 7], float(pattern(0, 0, 0, 7)));
  EXPECT_EQ(p[2 * 250 + 7], float(pattern(0, 0, 62, 7)));
  EXPECT_TRUE(throws_error([&] { make_samples(r, true, {"Oz", "Cz9"}); }, {"no channel named 'Cz9'", "Fp1", "POz"}));
}

TEST(EegSamples, ZscoringUsesTheTrainingStatistics) {
  const EegData d = load_eeg({things("study17/sub-01/preprocessed_eeg_training.npy")},
                             things("study17/sub-01/preprocessed_eeg_test.npy"), {true, true, {}});
  ASSERT_EQ(d.zscore.mean.size(), 17u);
  // Channel c of the averaged training set: 1000 i + 50 + c + t / 128 over i = 0..2, t = 0..99.
  for (int64_t c : {0, 16}) {
    double m = 0, ss = 0;
    for (int i = 0; i < 3; ++i)
      for (int t = 0; t < 100; ++t) m += pattern(i, 0.5, c, t);
    m /= 300;
    for (int i = 0; i < 3; ++i)
      for (int t = 0; t < 100; ++t) ss += (pattern(i, 0.5, c, t) - m) * (pattern(i, 0.5, c, t) - m);
    const double sd = std::sqrt(ss / 300);
    EXPECT_NEAR(d.zscore.mean[size_t(c)], m, 1e-3);
    EXPECT_NEAR(d.zscore.std[size_t(c)], sd, 1e-3);
    // The test set is scaled by the same numbers, not its own.
    EXPECT_NEAR(d.test.eeg.data<float>()[(1 * 17 + c) * 100 + 4], (pattern(1, 0.5, c, 4) - m) / sd, 1e-4);
  }
  const Tensor x = d.train.eeg.to(DType::f64);
  EXPECT_NEAR(mean(x).item(), 0.0, 1e-5);
  EXPECT_NEAR(var(x, {}, 0).item(), 1.0, 1e-4);
}

TEST(EegSamples, PreparedForATrainedModel) {
  EegRecording r;
  r.path = "four.npy";
  r.data = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17, 18}, {1, 2, 4, 2});
  r.ch_names = {"A", "B", "C", "D"};
  r.times = {0.0, 0.01};
  ModelSpec spec;
  spec.channels = 2;
  spec.times = 2;
  spec.ch_names = {"C", "A"};  // trained on two of the file's channels: picked by name
  spec.zscore = {{0.0f, 1.0f}, {1.0f, 2.0f}};
  const EegSamples s = prepare_for_model(r, spec);
  ASSERT_EQ(s.eeg.shape(), (Shape{1, 2, 2}));
  // Repetitions averaged: C = (5 + 15) / 2, (6 + 16) / 2; A = (1 + 11) / 2, ...; then z-scored.
  EXPECT_EQ(s.eeg.to_vector<float>(), (std::vector<float>{10.0f, 11.0f, (6.0f - 1.0f) / 2.0f, (7.0f - 1.0f) / 2.0f}));
  spec.ch_names = {"C", "E"};
  EXPECT_TRUE(throws_error([&] { prepare_for_model(r, spec); },
                           {"four.npy", "has 4 channels but the model was trained on 2 (C, E)"}));
  spec.ch_names = {"C", "A"};
  spec.times = 3;
  EXPECT_TRUE(throws_error([&] { prepare_for_model(r, spec); }, {"four.npy", "2 time points", "trained on 3"}));
}

// ---- protocols

TEST(Protocols, IntraAndInterSubject) {
  EXPECT_EQ(list_subjects(things("study17")), (std::vector<int>{1, 2, 3}));
  const ProtocolFiles intra = things_protocol(things("study17"), 2, false);
  EXPECT_EQ(intra.train, std::vector<std::string>{things("study17/sub-02/preprocessed_eeg_training.npy")});
  EXPECT_EQ(intra.test, things("study17/sub-02/preprocessed_eeg_test.npy"));
  EXPECT_EQ(intra.description, "intra-subject, sub-02");

  const ProtocolFiles inter = things_protocol(things("study17"), 2, true);
  EXPECT_EQ(inter.train, (std::vector<std::string>{things("study17/sub-01/preprocessed_eeg_training.npy"),
                                                   things("study17/sub-03/preprocessed_eeg_training.npy")}));
  EXPECT_EQ(inter.test, things("study17/sub-02/preprocessed_eeg_test.npy"));

  // Two subjects' training sets: both subjects' trials of the same images.
  const EegData d = load_eeg(inter.train, inter.test, {});
  EXPECT_EQ(d.train.eeg.size(0), 6);
  EXPECT_EQ(d.train.image, (std::vector<int64_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(d.train.images, 3);
  EXPECT_EQ(d.test.eeg.size(0), 2);

  EXPECT_TRUE(throws_error([] { things_protocol(things("study17"), 4, false); }, {"sub-04", "3 subjects found"}));
  EXPECT_TRUE(throws_error([] { list_subjects(things("nowhere")); }, {"nowhere", "no such folder"}));
}

TEST(Protocols, FilesThatDoNotGoTogether) {
  EXPECT_TRUE(throws_error(
      [] {
        load_eeg({things("study17/sub-01/preprocessed_eeg_training.npy")},
                 things("full63/sub-01/preprocessed_eeg_test.npy"), {});
      },
      {"full63", "channels differ"}));
  EXPECT_TRUE(throws_error(
      [] {
        load_eeg({things("study17/sub-01/preprocessed_eeg_training.npy"),
                  things("study17/sub-01/preprocessed_eeg_test.npy")},
                 things("study17/sub-01/preprocessed_eeg_test.npy"), {});
      },
      {"has 2 images", "has 3"}));
}

// ---- features

TEST(Features, RowsFollowTheSortedImageOrderAndEachSplitTakesItsOwn) {
  ScratchDir dir;
  // Rows in listing order: test b, train 2, train 1, test a; row r holds the value r.
  write_npy(dir.file("layer_4.npy"), Tensor::from_vector(std::vector<float>{0, 0, 1, 1, 2, 2, 3, 3}, {4, 2}));
  write_lines(dir.file("images.txt"), {"/data/test_images/00002_b/b.jpg", "/data/training_images/00002_y/y.jpg",
                                       "/data/training_images/00001_x/x.jpg", "/data/test_images/00001_a/a.jpg"});
  const Features train = read_features(dir.file("layer_4.npy"), Split::train);
  ASSERT_EQ(train.x.shape(), (Shape{2, 2}));
  EXPECT_EQ(train.x.to_vector<float>(), (std::vector<float>{2, 2, 1, 1}));
  EXPECT_EQ(train.images.front(), "/data/training_images/00001_x/x.jpg");
  EXPECT_TRUE(train.reordered);
  const Features test = read_features(dir.file("layer_4.npy"), Split::test);
  EXPECT_EQ(test.x.to_vector<float>(), (std::vector<float>{3, 3, 0, 0}));

  check_feature_rows(train, 2, "eeg.npy");
  EXPECT_TRUE(throws_error([&] { check_feature_rows(train, 3, "eeg.npy"); }, {"layer_4.npy", "has 2 images", "has 3"}));
}

TEST(Features, WithoutAListRowsAreTakenAsTheyAre) {
  ScratchDir dir;
  write_npy(dir.file("f.npy"), Tensor::from_vector(std::vector<double>{5, 6, 7, 8, 9, 10}, {2, 1, 3}));
  const Features f = read_features(dir.file("f.npy"), Split::test);
  EXPECT_EQ(f.x.shape(), (Shape{2, 3}));  // flattened per image, float32
  EXPECT_EQ(f.x.dtype(), DType::f32);
  EXPECT_EQ(f.x.to_vector<float>(), (std::vector<float>{5, 6, 7, 8, 9, 10}));
  EXPECT_FALSE(f.reordered);
}

TEST(Features, OtherListsKeepTheirOrder) {
  ScratchDir dir;
  write_npy(dir.file("layer_0.npy"), Tensor::from_vector(std::vector<float>{0, 1, 2}, {3, 1}));
  write_lines(dir.file("images.txt"), {"z.png", "a.png", "m.png"});
  const Features f = read_features(dir.file("layer_0.npy"), Split::test);
  EXPECT_EQ(f.x.to_vector<float>(), (std::vector<float>{0, 1, 2}));
  EXPECT_FALSE(f.reordered);
  EXPECT_EQ(f.images.front(), "z.png");
}

TEST(Features, BadFilesSayWhatIsWrong) {
  ScratchDir dir;
  write_npy(dir.file("nan.npy"), Tensor::from_vector(std::vector<float>{1, 2, NAN, 4}, {2, 2}));
  EXPECT_TRUE(throws_error([&] { read_features(dir.file("nan.npy"), Split::train); },
                           {"nan.npy", "NaN", "row 1, column 0"}));
  write_npy(dir.file("vec.npy"), Tensor::ones({4}));
  EXPECT_TRUE(throws_error([&] { read_features(dir.file("vec.npy"), Split::train); }, {"vec.npy", "[n_images, dim]"}));
  write_npy(dir.file("layer_1.npy"), Tensor::ones({3, 2}));
  write_lines(dir.file("images.txt"), {"a.jpg", "b.jpg"});
  EXPECT_TRUE(throws_error([&] { read_features(dir.file("layer_1.npy"), Split::train); },
                           {"images.txt", "lists 2 images", "has 3 rows"}));
}

TEST(Features, LayerFilesOfAFolder) {
  int64_t layer = 0;
  EXPECT_TRUE(parse_layer_file("layer_12.npy", &layer));
  EXPECT_EQ(layer, 12);
  EXPECT_TRUE(parse_layer_file("layer_final.npy", &layer));
  EXPECT_EQ(layer, models::kFinalLayer);
  EXPECT_FALSE(parse_layer_file("layer_pixels.npy", &layer));
  EXPECT_FALSE(parse_layer_file("layer_.npy", &layer));
  EXPECT_FALSE(parse_layer_file("images.txt", &layer));

  ScratchDir dir;
  fs::create_directories(dir.file("train"));
  fs::create_directories(dir.file("test"));
  for (const char* name : {"layer_final.npy", "layer_10.npy", "layer_2.npy"}) {
    write_npy(dir.file(std::string("train/") + name), Tensor::ones({2, 2}));
    write_npy(dir.file(std::string("test/") + name), Tensor::ones({2, 2}));
  }
  const std::vector<LayerFiles> files = find_layer_files(dir.file(""));
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].layer, 2);
  EXPECT_EQ(files[1].layer, 10);
  EXPECT_EQ(files[2].layer, models::kFinalLayer);
  EXPECT_EQ(fs::path(files[1].test).parent_path().filename(), "test");
  fs::remove(dir.file("test/layer_2.npy"));
  EXPECT_TRUE(throws_error([&] { find_layer_files(dir.file("")); }, {"layer_2.npy", "no test counterpart"}));
}
