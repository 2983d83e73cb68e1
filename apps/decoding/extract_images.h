#pragma once
// The images of `shallow extract`: listing them, and decoding + preprocessing them on worker
// threads, batch by batch, ahead of the model.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/preprocess.h"

namespace shallow::decoding {

// The image files a folder holds (walked recursively; .jpg, .jpeg, .png, .bmp, .gif, .tga, .ppm,
// .pgm, any case), sorted by path, so that THINGS' training_images/<concept>/<image> layout comes
// out in the order its EEG rows follow. Or, for a text file, its lines: one path each, relative
// paths taken from the list's folder, blank lines and lines starting with '#' skipped.
// Throws when the folder has no image or the list names none.
std::vector<std::string> list_images(const std::string& folder_or_list);

// One batch as the model takes it: the images that could be read, preprocessed, in order.
struct ImageBatch {
  int64_t index = 0;                 // of the batch
  Tensor pixels;                     // f32 [n_good, 3, S, S]
  std::vector<std::string> paths;    // of the rows of `pixels`
  std::vector<std::string> skipped;  // "path: reason" for each image that could not be read
};

// Decodes and preprocesses `paths` in batches of `batch_size` on `workers` threads, at most
// `ahead` batches in front of the consumer. next() hands the batches out in order. An image
// that cannot be read is an error naming it (thrown from next(), and no later batch is
// handed out), unless skip_bad, which lists it in the batch's `skipped` instead.
class BatchLoader {
 public:
  BatchLoader(std::vector<std::string> paths, const PreprocessConfig& config, int64_t batch_size,
              int workers, bool skip_bad, int ahead = 0);
  ~BatchLoader();  // stops and joins the workers
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t num_batches() const;
  // The next batch in order; false when every batch has been handed out.
  bool next(ImageBatch* batch);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace shallow::decoding
