#pragma once
// Zero-shot retrieval: each test EEG trial (averaged over its repetitions) is compared by cosine
// similarity, in the model's shared space, with every test image's features; the trial counts
// for top-k when its own image is among the k most similar. With THINGS-EEG2's 200 test images
// this is the 200-way task of the paper (chance: top-1 0.5 %, top-5 2.5 %).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/decoding/decoding_model.h"
#include "engine/tensor.h"

namespace shallow::decoding {

struct Retrieval {
  double top1 = 0, top5 = 0;    // fractions of the queries
  int64_t queries = 0;          // EEG trials
  int64_t candidates = 0;       // images to choose from (the "k-way")
  std::vector<int64_t> ranks;   // per query: 0 when its image scored best
};

// similarity [queries, candidates]; truth[q] is the right candidate of query q. A query's rank
// counts the other candidates that score at least as high as the right one, so that ties count
// against it (a model whose outputs are all equal scores no better than chance).
Retrieval retrieval_metrics(const Tensor& similarity, const std::vector<int64_t>& truth);

// The model's embeddings, in eval mode and without recording gradients, in batches.
Tensor embed_eeg(DecodingModel& model, const Tensor& eeg, int64_t batch = 1024);
Tensor embed_images(DecodingModel& model, const Tensor& features, int64_t batch = 1024);

// Retrieval of features rows by EEG trials; truth[q] is the feature row of trial q.
Retrieval evaluate_retrieval(DecodingModel& model, const Tensor& eeg, const std::vector<int64_t>& truth,
                             const Tensor& features);

// metrics.json: {"top1", "top5", "queries", "candidates", "chance_top1", "chance_top5",
// "settings": ...}, written whole under a temporary name and renamed into place.
nlohmann::json metrics_json(const Retrieval& r, const nlohmann::json& settings);
void write_json_file(const std::string& path, const nlohmann::json& j);
void write_text_file(const std::string& path, const std::string& text);

}  // namespace shallow::decoding
