#include "models/contrastive.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/loss.h"
#include "engine/ops/norm.h"

namespace shallow::models {

ContrastiveHead::ContrastiveHead(const ContrastiveConfig& c) : nn::Module("ContrastiveHead") {
  SH_CHECK(c.eeg_dim > 0 && c.image_dim > 0 && c.shared_dim > 0,
           "ContrastiveHead: eeg_dim, image_dim and shared_dim must be positive, got ", c.eeg_dim,
           ", ", c.image_dim, ", ", c.shared_dim);
  SH_CHECK(c.init_temperature > 0.0, "ContrastiveHead: init_temperature must be positive, got ",
           c.init_temperature);
  eeg_proj_ = register_module("eeg_proj", std::make_shared<nn::Linear>(c.eeg_dim, c.shared_dim));
  image_proj_ =
      register_module("image_proj", std::make_shared<nn::Linear>(c.image_dim, c.shared_dim));
  // The log of the scale is what is trained (as CLIP's logit_scale), so the scale stays positive.
  log_scale_ = register_parameter("logit_scale",
                                  Tensor::scalar(std::log(1.0 / c.init_temperature)));
}

Tensor ContrastiveHead::embed_eeg(const Tensor& eeg_features) {
  SH_CHECK(eeg_features.dim() == 2, "ContrastiveHead.embed_eeg: expected [N, ",
           eeg_proj_->in_features(), "], got shape ", shape_str(eeg_features.shape()));
  return l2_normalize(eeg_proj_->forward(eeg_features), -1);
}

Tensor ContrastiveHead::embed_image(const Tensor& image_features) {
  SH_CHECK(image_features.dim() == 2, "ContrastiveHead.embed_image: expected [N, ",
           image_proj_->in_features(), "], got shape ", shape_str(image_features.shape()));
  return l2_normalize(image_proj_->forward(image_features), -1);
}

Tensor ContrastiveHead::loss(const Tensor& eeg, const Tensor& image) {
  SH_CHECK(eeg.dim() == 2 && image.dim() == 2 && eeg.shape() == image.shape() && eeg.size(0) > 0,
           "ContrastiveHead.loss: expected two [N, shared] batches of the same shape, got eeg ",
           shape_str(eeg.shape()), " and image ", shape_str(image.shape()));
  // logits[i][j]: EEG i against image j; row i's positive is column i, and column j's is row j.
  const Tensor logits = exp(log_scale_) * matmul(eeg, image.t());
  const Tensor labels = Tensor::arange(eeg.size(0));
  return (cross_entropy(logits, labels) + cross_entropy(logits.t(), labels)) * 0.5;
}

double ContrastiveHead::logit_scale() const {
  NoGrad no_grad;
  return std::exp(log_scale_.item());
}

}  // namespace shallow::models
