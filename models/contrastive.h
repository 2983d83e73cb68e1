#pragma once
// The contrastive head of Shallow Alignment: a linear projector per modality into a shared
// space, L2 normalization, a learnable temperature and symmetric InfoNCE.
#include <memory>

#include "engine/nn/linear.h"
#include "engine/nn/module.h"

namespace shallow::models {

struct ContrastiveConfig {
  int64_t eeg_dim = 0;        // the encoder's output size
  int64_t image_dim = 0;      // the feature size of the chosen backbone layer
  int64_t shared_dim = 1024;  // the joint space
  double init_temperature = 0.07;  // logit scale starts at 1/0.07, as CLIP
};

class ContrastiveHead : public nn::Module {
 public:
  explicit ContrastiveHead(const ContrastiveConfig& config);
  // Projects and L2-normalizes each modality: [N, eeg_dim] -> [N, shared], [N, image_dim] -> [N, shared].
  Tensor embed_eeg(const Tensor& eeg_features);
  Tensor embed_image(const Tensor& image_features);
  // Symmetric InfoNCE over the batch (row i of each is a positive pair), averaged over both
  // directions, with logits scaled by exp(log_scale) (kept positive by construction).
  Tensor loss(const Tensor& eeg_embedded, const Tensor& image_embedded);
  double logit_scale() const;

 private:
  std::shared_ptr<nn::Linear> eeg_proj_, image_proj_;
  Tensor log_scale_;
};

}  // namespace shallow::models
