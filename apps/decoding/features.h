#pragma once
// Image features of one backbone layer, as `shallow extract` writes them: layer_<l>.npy
// (float32 [n_images, dim]; more dims are flattened per image) and, beside it, images.txt with
// the image of each row. THINGS' EEG rows follow the sorted order of the image paths (see
// things_eeg.h), so when images.txt lists THINGS images (paths through training_images/ or
// test_images/) the feature rows are put in that order; rows of other lists keep their order.
// A file whose images.txt lists both THINGS folders holds both sets; each split takes its own
// rows. Without images.txt, rows are taken as they are.
//
// A features folder for a sweep holds layer_<l>.npy files (with one images.txt covering both
// sets), or train/ and test/ subfolders each holding the same layer files.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace shallow::decoding {

enum class Split { train, test };

struct Features {
  std::string path;
  Tensor x;                         // [n_images, dim] float32, contiguous
  std::vector<std::string> images;  // the row's image, when images.txt was there
  bool reordered = false;           // rows were put in sorted image order
};

// Reads the rows of `split` (all rows unless images.txt names both THINGS folders). Throws
// naming the file for NaN or infinity, an empty file or a non-float dtype.
Features read_features(const std::string& path, Split split);

// Throws unless the feature file has one row per EEG image, giving both counts.
void check_feature_rows(const Features& features, int64_t eeg_images, const std::string& eeg_source);

// The layer of a file name: "layer_4.npy" -> 4, "layer_final.npy" -> kFinalLayer (-1).
// Returns false for other names.
bool parse_layer_file(const std::string& file_name, int64_t* layer);

// The layer files of a features folder, sorted by depth, final last.
struct LayerFiles {
  int64_t layer;  // number, or -1 for final
  std::string train, test;  // the same file when one file holds both sets
};
std::vector<LayerFiles> find_layer_files(const std::string& dir);

}  // namespace shallow::decoding
