#include "apps/decoding/things_eeg.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "engine/ops/elementwise.h"
#include "engine/ops/indexing.h"
#include "engine/ops/reduce.h"
#include "weights_import/numpy.h"
#include "weights_import/pickle.h"

namespace shallow::decoding {
namespace fs = std::filesystem;

namespace {

const char* kDataKey = "preprocessed_eeg_data";

// The keys of a pickled dict, for the message when the data key is absent.
std::string dict_keys(const pickle::Object* dict) {
  std::string keys;
  for (auto& [k, v] : dict->entries)
    keys += (keys.empty() ? "" : ", ") + (k->is(pickle::Kind::string) ? "'" + k->text + "'" : k->describe());
  return keys.empty() ? "none" : keys;
}

std::vector<std::string> read_names(const pickle::Object* o, const std::string& path) {
  std::vector<std::string> names;
  SH_CHECK(o->is_sequence(), path, ": 'ch_names' should be a list of str, got ", o->describe());
  for (const pickle::Object* item : o->items) {
    SH_CHECK(item->is(pickle::Kind::string), path, ": 'ch_names' should be a list of str, found ",
             item->describe());
    names.push_back(item->text);
  }
  return names;
}

std::vector<double> read_times(const pickle::Object* o, const std::string& path) {
  if (o->is(pickle::Kind::tensor)) {
    SH_CHECK(o->tensor.dim() == 1, path, ": 'times' should be one-dimensional, got shape ",
             shape_str(o->tensor.shape()));
    return o->tensor.to(DType::f64).to_vector<double>();
  }
  SH_CHECK(o->is_sequence(), path, ": 'times' should be an array or list of numbers, got ", o->describe());
  std::vector<double> times;
  for (const pickle::Object* item : o->items) {
    SH_CHECK(item->is(pickle::Kind::floating) || item->is(pickle::Kind::integer), path,
             ": 'times' should hold numbers, found ", item->describe());
    times.push_back(item->is(pickle::Kind::floating) ? item->floating : double(item->integer));
  }
  return times;
}

// Throws at the first value that is not finite, giving its position in the stored array.
void check_finite(const Tensor& data, const std::string& path) {
  const float* p = data.data<float>();
  const int64_t n = data.numel();
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(p[i])) continue;
    std::string where;
    int64_t rest = i;
    for (int64_t d = data.dim() - 1; d >= 0; --d) {
      where = std::to_string(rest % data.size(d)) + (where.empty() ? "" : ", ") + where;
      rest /= data.size(d);
    }
    throw Error(str_cat(path, ": the EEG data holds ", std::isnan(p[i]) ? "NaN" : "infinity",
                        " (first at [", where, "] of shape ", shape_str(data.shape()), ")"));
  }
}

Tensor as_float32(const Tensor& t, const std::string& path, const char* what) {
  SH_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, path, ": ", what,
           " should be float32 or float64, got ", dtype_name(t.dtype()));
  return t.to(DType::f32).contiguous();
}

}  // namespace

EegRecording read_eeg_file(const std::string& path) {
  SH_CHECK(fs::is_regular_file(path), path, ": no such EEG file");
  const TensorFile file = read_npy(path);
  EegRecording rec;
  rec.path = path;
  rec.simulated = fs::exists(fs::path(path).parent_path() / "simulated.json");

  if (!file.object) {  // a plain numeric array
    SH_CHECK(file.tensors.size() == 1, path, ": expected one array");
    rec.data = as_float32(file.tensors.begin()->second, path, "the EEG array");
  } else {
    const pickle::Object* root = file.object->root();
    SH_CHECK(root && root->is(pickle::Kind::dict), path,
             ": expected a dict (THINGS-EEG2 preprocessed data), got ",
             root ? root->describe() : std::string("nothing"));
    const pickle::Object* data = root->get(kDataKey);
    SH_CHECK(data, path, ": no key '", kDataKey, "' in the EEG dict (its keys: ", dict_keys(root), ")");
    SH_CHECK(data->is(pickle::Kind::tensor), path, ": '", kDataKey, "' should be an array, got ",
             data->describe());
    rec.data = as_float32(data->tensor, path, str_cat("'", kDataKey, "'").c_str());
    if (const pickle::Object* names = root->get("ch_names")) rec.ch_names = read_names(names, path);
    if (const pickle::Object* times = root->get("times")) rec.times = read_times(times, path);
  }
  SH_CHECK(rec.data.dim() == 4, path, ": the EEG data should be [images, repetitions, channels, times], got shape ",
           shape_str(rec.data.shape()));
  SH_CHECK(rec.data.numel() > 0, path, ": the EEG data is empty, shape ", shape_str(rec.data.shape()));
  if (rec.ch_names.empty())
    for (int64_t c = 0; c < rec.channels(); ++c) rec.ch_names.push_back("ch" + std::to_string(c + 1));
  if (rec.times.empty())
    for (int64_t t = 0; t < rec.time_points(); ++t) rec.times.push_back(double(t));
  SH_CHECK(int64_t(rec.ch_names.size()) == rec.channels(), path, ": 'ch_names' has ", rec.ch_names.size(),
           " names but the data has ", rec.channels(), " channels (shape ", shape_str(rec.data.shape()), ")");
  SH_CHECK(int64_t(rec.times.size()) == rec.time_points(), path, ": 'times' has ", rec.times.size(),
           " entries but the data has ", rec.time_points(), " time points (shape ",
           shape_str(rec.data.shape()), ")");
  check_finite(rec.data, path);
  return rec;
}

EegSamples make_samples(const EegRecording& rec, bool average_repetitions,
                        const std::vector<std::string>& channels) {
  Tensor data = rec.data;  // [images, reps, C, T]
  EegSamples s;
  s.ch_names = rec.ch_names;
  if (!channels.empty()) {
    std::vector<int64_t> index;
    for (const std::string& name : channels) {
      auto it = std::find(rec.ch_names.begin(), rec.ch_names.end(), name);
      if (it == rec.ch_names.end()) {
        std::string known;
        for (const std::string& n : rec.ch_names) known += (known.empty() ? "" : " ") + n;
        throw Error(str_cat(rec.path, ": no channel named '", name, "'; its channels: ", known));
      }
      index.push_back(int64_t(it - rec.ch_names.begin()));
    }
    data = index_select(data, 2, Tensor::from_vector(index, {int64_t(index.size())}));
    s.ch_names = channels;
  }
  data = data.contiguous();
  const int64_t images = data.size(0), reps = data.size(1), C = data.size(2), T = data.size(3);
  if (average_repetitions) {
    // Summed in double, as NumPy's mean of float32 data is accurate to well below its spacing.
    s.eeg = Tensor::empty({images, C, T});
    const float* in = data.data<float>();
    float* out = s.eeg.data<float>();
    const int64_t trial = C * T;
    std::vector<double> acc(static_cast<size_t>(trial));
    for (int64_t i = 0; i < images; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t r = 0; r < reps; ++r) {
        const float* x = in + (i * reps + r) * trial;
        for (int64_t k = 0; k < trial; ++k) acc[size_t(k)] += x[k];
      }
      for (int64_t k = 0; k < trial; ++k) out[i * trial + k] = float(acc[size_t(k)] / double(reps));
    }
    for (int64_t i = 0; i < images; ++i) s.image.push_back(i);
  } else {
    // Image-major: every repetition of image 0, then of image 1, ...
    s.eeg = data.view({images * reps, C, T});
    for (int64_t i = 0; i < images; ++i)
      for (int64_t r = 0; r < reps; ++r) s.image.push_back(i);
  }
  s.images = images;
  s.times = rec.times;
  s.sources = {rec.path};
  s.simulated = rec.simulated;
  return s;
}

void append_samples(EegSamples& into, const EegSamples& more) {
  const std::string where = more.sources.empty() ? std::string("the EEG data") : more.sources.front();
  const std::string first = into.sources.empty() ? std::string("the first file") : into.sources.front();
  SH_CHECK(more.images == into.images, where, ": has ", more.images, " images but ", first, " has ",
           into.images, "; the files must cover the same images");
  SH_CHECK(more.ch_names == into.ch_names, where, ": its channels differ from those of ", first);
  SH_CHECK(more.times.size() == into.times.size(), where, ": has ", more.times.size(),
           " time points but ", first, " has ", into.times.size());
  into.eeg = concat({into.eeg, more.eeg}, 0);
  into.image.insert(into.image.end(), more.image.begin(), more.image.end());
  into.sources.insert(into.sources.end(), more.sources.begin(), more.sources.end());
  into.simulated = into.simulated || more.simulated;
}

ChannelStats channel_stats(const Tensor& eeg) {
  SH_CHECK(eeg.dim() == 3, "channel_stats: expected [samples, channels, times], got ", shape_str(eeg.shape()));
  const Tensor x = eeg.to(DType::f64);
  const Tensor m = mean(x, {0, 2});
  const Tensor sd = sqrt(var(x, {0, 2}, /*correction=*/0));
  ChannelStats stats;
  for (double v : m.to_vector<double>()) stats.mean.push_back(float(v));
  for (double v : sd.to_vector<double>()) stats.std.push_back(float(std::max(v, 1e-8)));
  return stats;
}

void apply_zscore(Tensor& eeg, const ChannelStats& stats) {
  SH_CHECK(eeg.dim() == 3 && eeg.size(1) == int64_t(stats.mean.size()),
           "z-scoring: the statistics have ", stats.mean.size(), " channels but the EEG has shape ",
           shape_str(eeg.shape()));
  const int64_t C = eeg.size(1);
  const Tensor m = Tensor::from_vector(stats.mean, {1, C, 1});
  const Tensor s = Tensor::from_vector(stats.std, {1, C, 1});
  eeg = div(sub(eeg, m), s).contiguous();
}

EegData load_eeg(const std::vector<std::string>& train_files, const std::string& test_file,
                 const EegOptions& options) {
  SH_CHECK(!train_files.empty(), "no training EEG file given");
  EegData d;
  for (size_t i = 0; i < train_files.size(); ++i) {
    EegSamples s = make_samples(read_eeg_file(train_files[i]), options.average_repetitions, options.channels);
    if (i == 0) d.train = std::move(s);
    else append_samples(d.train, s);
  }
  d.test = make_samples(read_eeg_file(test_file), /*average_repetitions=*/true, options.channels);
  SH_CHECK(d.test.ch_names == d.train.ch_names, test_file, ": its channels differ from those of ",
           train_files.front());
  SH_CHECK(d.test.times.size() == d.train.times.size(), test_file, ": has ", d.test.times.size(),
           " time points but ", train_files.front(), " has ", d.train.times.size());
  if (options.zscore) {
    d.zscore = channel_stats(d.train.eeg);
    apply_zscore(d.train.eeg, d.zscore);
    apply_zscore(d.test.eeg, d.zscore);
  }
  return d;
}

// ---- protocols

namespace {

std::string training_file(const std::string& dir) {
  return (fs::path(dir) / "preprocessed_eeg_training.npy").string();
}
std::string test_file(const std::string& dir) {
  return (fs::path(dir) / "preprocessed_eeg_test.npy").string();
}

// Subject number -> folder, for every sub-XX folder of root that holds both files.
std::map<int, std::string> subject_folders(const std::string& root) {
  SH_CHECK(fs::is_directory(root), root, ": no such folder");
  std::map<int, std::string> folders;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.size() < 5 || name.size() > 9 || name.rfind("sub-", 0) != 0) continue;
    const std::string digits = name.substr(4);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    const std::string dir = entry.path().string();
    if (fs::exists(training_file(dir)) && fs::exists(test_file(dir))) folders[std::stoi(digits)] = dir;
  }
  return folders;
}

}  // namespace

std::vector<int> list_subjects(const std::string& root) {
  std::vector<int> subjects;
  for (auto& [number, dir] : subject_folders(root)) subjects.push_back(number);
  return subjects;
}

ProtocolFiles things_protocol(const std::string& root, int subject, bool inter_subject) {
  const std::map<int, std::string> folders = subject_folders(root);
  auto it = folders.find(subject);
  SH_CHECK(it != folders.end(), root, ": no folder sub-", subject < 10 ? "0" : "", subject,
           " holding preprocessed_eeg_training.npy and preprocessed_eeg_test.npy (", folders.size(),
           " subjects found)");
  ProtocolFiles files;
  files.test = test_file(it->second);
  const std::string held_out = fs::path(it->second).filename().string();
  if (!inter_subject) {
    files.train = {training_file(it->second)};
    files.description = "intra-subject, " + held_out;
    return files;
  }
  files.description = "inter-subject, test " + held_out + ", train";
  for (auto& [other, dir] : folders) {
    if (other == subject) continue;
    files.train.push_back(training_file(dir));
    files.description += " " + fs::path(dir).filename().string();
  }
  SH_CHECK(!files.train.empty(), root, ": inter-subject needs another subject than ", held_out);
  return files;
}

}  // namespace shallow::decoding
