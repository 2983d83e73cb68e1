#pragma once
// `shallow extract`: a folder (or list) of images -> one feature file per requested layer of a
// vision backbone.
//
//   DIR/layer_<l>.npy    float32 [n_images, dim] (with --pool none: [n, T, D] or [n, C, H, W]);
//                        <l> is the layer number or "final"; "pixels" is the preprocessed input
//                        itself, [n, 3, S, S], normalized
//   DIR/images.txt       the image paths, one a line, in row order
//
// Every file is written whole under a temporary name and renamed into place at the end, so an
// interrupted or failed run leaves no file behind (and overwrites nothing).
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "apps/decoding/extract_model.h"
#include "models/pooling.h"

namespace shallow::decoding {

struct ExtractOptions {
  std::string weights;  // any weights file weights_import reads
  std::string images;   // a folder (walked recursively) or a text file of paths
  std::string out_dir;
  std::string layers = "final";  // "0,4,6,final", "all", and "pixels" for the input itself
  models::Pooling pooling = models::Pooling::cls;
  BackboneOptions model;         // config file, activation, dtype
  int64_t batch = 32;
  int threads = 0;               // compute threads; 0: every hardware thread
  int decode_threads = 0;        // image decoding workers; 0: a quarter of the hardware, 1 to 4
  Device device = Device::cpu();
  bool skip_bad = false;         // list and skip unreadable images instead of failing
  bool progress = true;          // a progress bar on the log stream
};

struct ExtractResult {
  int64_t images = 0;                 // rows written
  std::vector<std::string> skipped;   // "path: reason" of each skipped image
  std::vector<std::string> files;     // written, in order
  double seconds = 0;
  int64_t peak_bytes = 0;             // peak tensor memory during the run
  int64_t model_bytes = 0;            // of it, the model's weights
  int64_t device_peak_bytes = 0;      // with --device cuda: peak tensor memory on the GPU
};

// Runs the whole extraction, logging what it does (model, assumptions, skipped images, a
// progress bar with images/s and the time left) to `log`.
// Bad input (flags, files, layers, images) throws shallow::Error with a message for the user.
ExtractResult run_extract(const ExtractOptions& options, std::ostream& log);

// Splits "0,4,final,pixels" into its names (trimmed, empty ones dropped).
std::vector<std::string> split_layer_names(const std::string& spec);

// "1.2 GiB", "340.5 MiB"; and "mm:ss" or "h:mm:ss".
std::string human_bytes(int64_t bytes);
std::string clock_text(double seconds);

}  // namespace shallow::decoding
