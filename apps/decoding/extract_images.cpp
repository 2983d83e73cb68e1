#include "apps/decoding/extract_images.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace shallow::decoding {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- listing

namespace {

const std::set<std::string> kImageExtensions = {".jpg", ".jpeg", ".png", ".bmp", ".gif",
                                                ".tga", ".ppm", ".pgm"};

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return kImageExtensions.count(ext) > 0;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> list_folder(const std::string& folder) {
  std::vector<std::string> paths;
  std::error_code ec;
  fs::recursive_directory_iterator it(folder, fs::directory_options::follow_directory_symlink, ec);
  SH_CHECK(!ec, "cannot read the image folder ", folder, ": ", ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    SH_CHECK(!ec, "cannot read the image folder ", folder, ": ", ec.message());
    if (it->is_regular_file() && is_image_file(it->path())) paths.push_back(it->path().string());
  }
  std::sort(paths.begin(), paths.end());
  SH_CHECK(!paths.empty(), "no images in ", folder, " (looked for .jpg, .jpeg, .png, .bmp, .gif, "
           ".tga, .ppm, .pgm in it and its subfolders)");
  return paths;
}

std::vector<std::string> list_file(const std::string& list) {
  std::ifstream in(list);
  SH_CHECK(in.good(), "cannot open the image list ", list);
  const fs::path base = fs::path(list).parent_path();
  std::vector<std::string> paths;
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const fs::path p(line);
    paths.push_back(p.is_absolute() || base.empty() ? p.string() : (base / p).string());
  }
  SH_CHECK(!paths.empty(), "the image list ", list, " names no image");
  return paths;
}

}  // namespace

std::vector<std::string> list_images(const std::string& folder_or_list) {
  SH_CHECK(fs::exists(folder_or_list), "--images ", folder_or_list, ": no such folder or file");
  return fs::is_directory(folder_or_list) ? list_folder(folder_or_list) : list_file(folder_or_list);
}

// ---------------------------------------------------------------- the loader

struct BatchLoader::State {
  std::vector<std::string> paths;
  PreprocessConfig config;
  int64_t batch_size = 1, num_batches = 0, ahead = 1;
  bool skip_bad = false;

  std::mutex mu;
  std::condition_variable ready, space;
  int64_t next_claim = 0;  // the next batch a worker takes
  int64_t next_out = 0;    // the next batch next() hands out
  std::map<int64_t, ImageBatch> done;
  std::exception_ptr error;
  bool stopping = false;
  std::vector<std::thread> workers;

  ImageBatch build(int64_t b) const {
    const int64_t begin = b * batch_size;
    const int64_t end = std::min<int64_t>(begin + batch_size, int64_t(paths.size()));
    const int64_t side = config.crop_size, plane = 3 * side * side;
    ImageBatch batch;
    batch.index = b;
    Tensor pixels = Tensor::empty({end - begin, 3, side, side}, DType::f32);
    int64_t good = 0;
    for (int64_t i = begin; i < end; ++i) {
      const std::string& path = paths[size_t(i)];
      try {
        const Tensor image = preprocess_file(path, config);
        std::memcpy(pixels.data<float>() + good * plane, image.data<float>(),
                    size_t(plane) * sizeof(float));
        batch.paths.push_back(path);
        ++good;
      } catch (const Error& e) {
        if (!skip_bad) throw;
        batch.skipped.push_back(e.what());
      }
    }
    batch.pixels = good == end - begin ? pixels : pixels.narrow(0, 0, good).contiguous();
    return batch;
  }

  void work() {
    for (;;) {
      int64_t b;
      {
        std::unique_lock<std::mutex> lock(mu);
        space.wait(lock, [&] {
          return stopping || error || next_claim >= num_batches || next_claim < next_out + ahead;
        });
        if (stopping || error || next_claim >= num_batches) return;
        b = next_claim++;
      }
      ImageBatch batch;
      std::exception_ptr failed;
      try {
        batch = build(b);
      } catch (...) {
        failed = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mu);
      if (failed) {
        if (!error) error = failed;
      } else {
        done[b] = std::move(batch);
      }
      ready.notify_all();
      space.notify_all();
    }
  }
};

BatchLoader::BatchLoader(std::vector<std::string> paths, const PreprocessConfig& config,
                         int64_t batch_size, int workers, bool skip_bad, int ahead)
    : state_(std::make_unique<State>()) {
  SH_CHECK(batch_size > 0, "batch size must be positive, got ", batch_size);
  State& s = *state_;
  s.paths = std::move(paths);
  s.config = config;
  s.batch_size = batch_size;
  s.num_batches = (int64_t(s.paths.size()) + batch_size - 1) / batch_size;
  s.skip_bad = skip_bad;
  workers = std::max(1, workers);
  s.ahead = ahead > 0 ? ahead : 2 * workers;
  for (int i = 0; i < workers; ++i) s.workers.emplace_back([&s] { s.work(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopping = true;
  }
  state_->space.notify_all();
  for (std::thread& t : state_->workers) t.join();
}

int64_t BatchLoader::num_batches() const { return state_->num_batches; }

bool BatchLoader::next(ImageBatch* batch) {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.ready.wait(lock, [&] { return s.error || s.next_out >= s.num_batches || s.done.count(s.next_out); });
  if (s.error) std::rethrow_exception(s.error);
  if (s.next_out >= s.num_batches) return false;
  auto it = s.done.find(s.next_out);
  *batch = std::move(it->second);
  s.done.erase(it);
  ++s.next_out;
  s.space.notify_all();
  return true;
}

}  // namespace shallow::decoding
