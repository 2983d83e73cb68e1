#include "apps/decoding/features.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/ops/indexing.h"
#include "models/pooling.h"
#include "weights_import/numpy.h"

namespace shallow::decoding {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  SH_CHECK(in, path, ": cannot be read");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Where a path goes through a THINGS image folder: the set, and the path below that folder
// ("00001_aardvark/aardvark_01b.jpg"), which orders the rows as the EEG does.
struct ImagePlace {
  int split = -1;  // 0 train, 1 test, -1 neither
  std::string key;
};

ImagePlace place_of(const std::string& path) {
  ImagePlace p;
  p.key = path;
  const fs::path parts(path);
  fs::path below;
  for (const auto& part : parts) {
    if (p.split >= 0) {
      below /= part;
    } else if (part == "training_images") {
      p.split = 0;
    } else if (part == "test_images") {
      p.split = 1;
    }
  }
  if (p.split >= 0) p.key = below.generic_string();
  return p;
}

void check_finite(const Tensor& x, const std::string& path) {
  const float* p = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i)
    SH_CHECK(std::isfinite(p[i]), path, ": the features hold ", std::isnan(p[i]) ? "NaN" : "infinity",
             " (first at row ", i / x.size(1), ", column ", i % x.size(1), ")");
}

}  // namespace

Features read_features(const std::string& path, Split split) {
  SH_CHECK(fs::is_regular_file(path), path, ": no such feature file");
  const Tensor raw = read_npy_array(path);
  SH_CHECK(raw.dtype() == DType::f32 || raw.dtype() == DType::f64 || raw.dtype() == DType::f16 ||
               raw.dtype() == DType::bf16,
           path, ": features should be floating point, got ", dtype_name(raw.dtype()));
  SH_CHECK(raw.dim() >= 2 && raw.size(0) > 0 && raw.numel() > 0, path,
           ": features should be [n_images, dim], got shape ", shape_str(raw.shape()));
  Features f;
  f.path = path;
  f.x = raw.to(DType::f32).reshape({raw.size(0), -1}).contiguous();

  const fs::path list = fs::path(path).parent_path() / "images.txt";
  if (fs::exists(list)) {
    f.images = read_lines(list.string());
    SH_CHECK(int64_t(f.images.size()) == f.x.size(0), list.string(), ": lists ", f.images.size(),
             " images but ", path, " has ", f.x.size(0), " rows");
    std::vector<ImagePlace> places;
    bool has_train = false, has_test = false;
    for (const std::string& image : f.images) {
      places.push_back(place_of(image));
      has_train = has_train || places.back().split == 0;
      has_test = has_test || places.back().split == 1;
    }
    std::vector<int64_t> selected;  // this split's rows, in file order
    const int wanted = split == Split::train ? 0 : 1;
    for (int64_t i = 0; i < int64_t(places.size()); ++i)
      if (!(has_train && has_test) || places[size_t(i)].split == wanted) selected.push_back(i);
    // THINGS' EEG rows follow the sorted order of the image paths below training_images/ and
    // test_images/; other lists are taken in their own order.
    std::vector<int64_t> rows = selected;
    if (has_train || has_test)
      std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) {
        return places[size_t(a)].key < places[size_t(b)].key;
      });
    f.reordered = rows != selected;
    if (rows.size() != places.size() || f.reordered) {
      f.x = index_select(f.x, 0, Tensor::from_vector(rows, {int64_t(rows.size())})).contiguous();
      std::vector<std::string> images;
      for (int64_t r : rows) images.push_back(f.images[size_t(r)]);
      f.images = std::move(images);
    }
    SH_CHECK(f.x.size(0) > 0, path, ": images.txt lists no ", split == Split::train ? "training" : "test",
             " images");
  }
  check_finite(f.x, path);
  return f;
}

void check_feature_rows(const Features& features, int64_t eeg_images, const std::string& eeg_source) {
  SH_CHECK(features.x.size(0) == eeg_images, "the feature file ", features.path, " has ",
           features.x.size(0), " images but the EEG data ", eeg_source, " has ", eeg_images,
           "; they must cover the same images in the same order");
}

bool parse_layer_file(const std::string& file_name, int64_t* layer) {
  const std::string prefix = "layer_", suffix = ".npy";
  if (file_name.size() <= prefix.size() + suffix.size() || file_name.rfind(prefix, 0) != 0 ||
      file_name.compare(file_name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string name = file_name.substr(prefix.size(), file_name.size() - prefix.size() - suffix.size());
  if (name == "final") {
    *layer = models::kFinalLayer;
    return true;
  }
  if (name.size() > 6 || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  *layer = std::stoll(name);
  return true;
}

std::vector<LayerFiles> find_layer_files(const std::string& dir) {
  SH_CHECK(fs::is_directory(dir), dir, ": no such features folder");
  const bool split_folders = fs::is_directory(fs::path(dir) / "train") && fs::is_directory(fs::path(dir) / "test");
  const fs::path scan = split_folders ? fs::path(dir) / "train" : fs::path(dir);
  std::vector<LayerFiles> files;
  for (const auto& entry : fs::directory_iterator(scan)) {
    int64_t layer = 0;
    if (!entry.is_regular_file() || !parse_layer_file(entry.path().filename().string(), &layer)) continue;
    LayerFiles lf{layer, entry.path().string(), entry.path().string()};
    if (split_folders) {
      lf.test = (fs::path(dir) / "test" / entry.path().filename()).string();
      SH_CHECK(fs::exists(lf.test), lf.test, ": missing (", lf.train, " has no test counterpart)");
    }
    files.push_back(lf);
  }
  SH_CHECK(!files.empty(), scan.string(), ": holds no layer_<l>.npy feature files");
  // Numbered layers by depth, the final embedding last.
  std::sort(files.begin(), files.end(), [](const LayerFiles& a, const LayerFiles& b) {
    const int64_t ka = a.layer < 0 ? INT64_MAX : a.layer, kb = b.layer < 0 ? INT64_MAX : b.layer;
    return ka < kb;
  });
  return files;
}

}  // namespace shallow::decoding
