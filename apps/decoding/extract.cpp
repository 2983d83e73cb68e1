#include "apps/decoding/extract.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "apps/decoding/extract_images.h"
#include "engine/allocator.h"
#include "engine/cuda/api.h"
#include "engine/threads.h"
#include "weights_import/file_writer.h"
#include "weights_import/numpy.h"

namespace shallow::decoding {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

std::string human_bytes(int64_t n) {
  char buf[32];
  if (n >= (int64_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(n) / double(1 << 30));
  else std::snprintf(buf, sizeof buf, "%.1f MiB", double(n) / double(1 << 20));
  return buf;
}

std::string clock_text(double seconds) {
  const int64_t s = int64_t(std::max(0.0, std::round(seconds)));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600),
                               (long long)(s / 60 % 60), (long long)(s % 60));
  else std::snprintf(buf, sizeof buf, "%02lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

namespace {

// A progress bar redrawn in place on a terminal; elsewhere (a log file, a pipe) one line at
// every tenth of the way, so that logs stay readable.
class Progress {
 public:
  Progress(std::ostream& out, int64_t total, bool enabled)
      : out_(out), total_(total), enabled_(enabled),
        terminal_(&out == &std::cerr && ::isatty(STDERR_FILENO)), start_(Clock::now()) {}

  void update(int64_t done) {
    if (!enabled_ || total_ <= 0) return;
    const double elapsed = seconds_since(start_);
    const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
    const double eta = rate > 0 ? double(total_ - done) / rate : 0.0;
    const int tenth = int(10 * done / total_);
    if (!terminal_ && tenth == last_tenth_ && done != total_) return;
    last_tenth_ = tenth;
    constexpr int kWidth = 30;
    const int filled = int(kWidth * done / total_);
    char line[160];
    std::snprintf(line, sizeof line, "[%s%s] %lld/%lld images  %.1f images/s  ETA %s",
                  std::string(size_t(filled), '#').c_str(),
                  std::string(size_t(kWidth - filled), '.').c_str(), (long long)done,
                  (long long)total_, rate, clock_text(eta).c_str());
    out_ << (terminal_ ? "\r" : "") << line << (terminal_ ? "" : "\n") << std::flush;
  }
  void finish() {
    if (enabled_ && terminal_) out_ << "\n";
  }

 private:
  std::ostream& out_;
  int64_t total_;
  bool enabled_, terminal_;
  Clock::time_point start_;
  int last_tenth_ = -1;
};

// One output array, filled batch by batch: rows for every listed image are reserved up front,
// and only the rows of the images actually read are written out.
struct OutputArray {
  Tensor rows;  // f32 [n_listed, ...]
};

void store(std::map<std::string, OutputArray>& outputs, const std::string& name, int64_t n_listed,
           int64_t row, const Tensor& value) {
  OutputArray& out = outputs[name];
  if (!out.rows.defined()) {
    Shape shape = value.shape();
    shape[0] = n_listed;
    out.rows = Tensor::empty(shape, DType::f32);
  }
  out.rows.narrow(0, row, value.size(0)).copy_(value);
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  FileWriter w(path);
  for (const std::string& l : lines) w.write(l + "\n");
  w.commit();
}

int default_decode_threads() {
  const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  return std::clamp(hw / 4, 1, 4);
}

}  // namespace

std::vector<std::string> split_layer_names(const std::string& spec) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    std::string name = spec.substr(start, end - start);
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    if (!name.empty()) names.push_back(name);
    start = end + 1;
  }
  return names;
}

ExtractResult run_extract(const ExtractOptions& o, std::ostream& log) {
  const Clock::time_point t0 = Clock::now();
  SH_CHECK(!o.weights.empty(), "--weights is required");
  SH_CHECK(!o.images.empty(), "--images is required");
  SH_CHECK(!o.out_dir.empty(), "--out is required");
  SH_CHECK(o.batch > 0, "--batch must be positive, got ", o.batch);
  SH_CHECK(o.device.is_cpu() || (cuda_available() && o.device.index < cuda_device_count()),
           "--device ", o.device.str(), ": no such CUDA device here (",
           cuda_available() ? std::to_string(cuda_device_count()) + " found" : "no CUDA device or driver, or a build without CUDA",
           ")");
  std::vector<std::string> names = split_layer_names(o.layers);
  const auto pixels_at = std::find(names.begin(), names.end(), "pixels");
  const bool want_pixels = pixels_at != names.end();
  names.erase(std::remove(names.begin(), names.end(), "pixels"), names.end());
  SH_CHECK(want_pixels || !names.empty(), "--layers names no layer (e.g. 0,4,6,final, all or pixels)");
  if (o.threads > 0) set_num_threads(o.threads);

  const std::vector<std::string> paths = list_images(o.images);
  reset_peak_memory();
  LoadedBackbone loaded = load_backbone(o.weights, o.model);
  models::Backbone& backbone = *loaded.backbone;
  if (!o.device.is_cpu()) {
    backbone.module().to(o.device);  // images are decoded on the host and sent batch by batch
    reset_peak_memory(o.device);
  }
  const std::vector<int64_t> layers =
      names.empty() ? std::vector<int64_t>{} : models::parse_layers(names, backbone);
  const int64_t model_bytes = memory_stats().current_bytes;

  log << "model: " << loaded.architecture.describe() << "\n       " << backbone.describe() << "\n";
  for (const std::string& note : loaded.notes) log << "       " << note << "\n";
  const PreprocessConfig& pre = backbone.preprocess();
  log << "input: " << paths.size() << " images, resized to " << pre.resize_size << ", cropped to "
      << pre.crop_size << ", mean (" << pre.mean[0] << ", " << pre.mean[1] << ", " << pre.mean[2]
      << "), std (" << pre.std[0] << ", " << pre.std[1] << ", " << pre.std[2] << ")\n";
  log << "layers: " << (want_pixels ? "pixels " : "");
  for (int64_t l : layers) log << models::layer_name(l) << " ";
  log << "(pooling " << models::pooling_name(o.pooling) << "), batch " << o.batch << ", "
      << num_threads() << " threads\n" << std::flush;

  backbone.check_pooling(o.pooling, layers);  // before any image is decoded

  fs::create_directories(o.out_dir);
  ExtractResult result;
  std::map<std::string, OutputArray> outputs;
  std::vector<std::string> written_paths;
  const int64_t n_listed = int64_t(paths.size());
  {
    BatchLoader loader(paths, pre, o.batch, o.decode_threads > 0 ? o.decode_threads
                                                                 : default_decode_threads(),
                       o.skip_bad);
    Progress progress(log, n_listed, o.progress);
    int64_t row = 0, seen = 0;
    ImageBatch batch;
    while (loader.next(&batch)) {
      for (const std::string& s : batch.skipped) log << (o.progress ? "\n" : "") << "skipped: " << s << "\n";
      result.skipped.insert(result.skipped.end(), batch.skipped.begin(), batch.skipped.end());
      const int64_t n = batch.pixels.size(0);
      if (n > 0) {
        if (want_pixels) store(outputs, "pixels", n_listed, row, batch.pixels);
        if (!layers.empty())
          backbone.extract(batch.pixels.to(o.device), layers, o.pooling, [&](int64_t l, const Tensor& t) {
            store(outputs, models::layer_name(l), n_listed, row, t);
          });
        written_paths.insert(written_paths.end(), batch.paths.begin(), batch.paths.end());
        row += n;
      }
      seen += n + int64_t(batch.skipped.size());
      progress.update(seen);
    }
    progress.finish();
    result.images = row;
  }
  SH_CHECK(result.images > 0, "none of the ", n_listed, " images could be read");

  // Every array is complete: write each whole (temporary name, then rename), images.txt last.
  for (const auto& [name, out] : outputs) {
    const std::string path = (fs::path(o.out_dir) / ("layer_" + name + ".npy")).string();
    write_npy(path, out.rows.narrow(0, 0, result.images));
    result.files.push_back(path);
  }
  const std::string list_path = (fs::path(o.out_dir) / "images.txt").string();
  write_lines(list_path, written_paths);
  result.files.push_back(list_path);

  result.seconds = seconds_since(t0);
  result.peak_bytes = memory_stats().peak_bytes;
  result.model_bytes = model_bytes;
  if (!o.device.is_cpu()) result.device_peak_bytes = memory_stats(o.device).peak_bytes;
  return result;
}

}  // namespace shallow::decoding
