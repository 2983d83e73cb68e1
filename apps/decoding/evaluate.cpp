#include "apps/decoding/evaluate.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/ops/indexing.h"
#include "engine/ops/linalg.h"
#include "weights_import/file_writer.h"

namespace shallow::decoding {

Retrieval retrieval_metrics(const Tensor& similarity, const std::vector<int64_t>& truth) {
  SH_CHECK(similarity.dim() == 2, "retrieval: expected a [queries, candidates] similarity, got shape ",
           shape_str(similarity.shape()));
  const int64_t Q = similarity.size(0), K = similarity.size(1);
  SH_CHECK(int64_t(truth.size()) == Q, "retrieval: ", truth.size(), " answers for ", Q, " queries");
  SH_CHECK(Q > 0 && K > 0, "retrieval: nothing to retrieve, similarity of shape ", shape_str(similarity.shape()));
  const Tensor s = similarity.to(DType::f64).contiguous();
  const double* p = s.data<double>();
  Retrieval r;
  r.queries = Q;
  r.candidates = K;
  int64_t hits1 = 0, hits5 = 0;
  for (int64_t q = 0; q < Q; ++q) {
    const int64_t right = truth[size_t(q)];
    SH_CHECK(right >= 0 && right < K, "retrieval: query ", q, " answers candidate ", right, " of ", K);
    const double* row = p + q * K;
    int64_t rank = 0;
    for (int64_t k = 0; k < K; ++k)
      if (k != right && row[k] >= row[right]) ++rank;
    r.ranks.push_back(rank);
    hits1 += rank < 1;
    hits5 += rank < 5;
  }
  r.top1 = double(hits1) / double(Q);
  r.top5 = double(hits5) / double(Q);
  return r;
}

namespace {

template <class Fn>
Tensor embed_in_batches(DecodingModel& model, const Tensor& x, int64_t batch, Fn fn) {
  SH_CHECK(batch > 0, "embedding: the batch size must be positive, got ", batch);
  NoGrad no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < x.size(0); start += batch)
    parts.push_back(fn(x.slice(0, start, std::min(x.size(0), start + batch)).contiguous()));
  model.train(was_training);
  return concat(parts, 0);
}

}  // namespace

Tensor embed_eeg(DecodingModel& model, const Tensor& eeg, int64_t batch) {
  return embed_in_batches(model, eeg, batch, [&](const Tensor& b) { return model.embed_eeg(b); });
}

Tensor embed_images(DecodingModel& model, const Tensor& features, int64_t batch) {
  return embed_in_batches(model, features, batch, [&](const Tensor& b) { return model.embed_image(b); });
}

Retrieval evaluate_retrieval(DecodingModel& model, const Tensor& eeg, const std::vector<int64_t>& truth,
                             const Tensor& features) {
  const Tensor e = embed_eeg(model, eeg);
  const Tensor f = embed_images(model, features);
  NoGrad no_grad;
  return retrieval_metrics(matmul(e, f.t()), truth);
}

nlohmann::json metrics_json(const Retrieval& r, const nlohmann::json& settings) {
  const double k = double(r.candidates);
  return {{"top1", r.top1},
          {"top5", r.top5},
          {"queries", r.queries},
          {"candidates", r.candidates},
          {"chance_top1", 1.0 / k},
          {"chance_top5", std::min(1.0, 5.0 / k)},
          {"settings", settings}};
}

void write_text_file(const std::string& path, const std::string& text) {
  FileWriter out(path);
  out.write(text);
  out.commit();
}

void write_json_file(const std::string& path, const nlohmann::json& j) { write_text_file(path, j.dump(2) + "\n"); }

}  // namespace shallow::decoding
