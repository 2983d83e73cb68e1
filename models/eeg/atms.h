#pragma once
// ATM-S (Li et al., NeurIPS 2024), the encoder of its published ATMS_retrieval code:
//
//   encoder   the channel-token transformer (itransformer.h) with d_model = T, 4 heads,
//             d_ff 256, one layer, dropout 0.25: [N, C, T] -> [N, C, T]
//   enc_eeg   NICE's TSConv stem and flattening (tsconv.h) on that output
//   proj_eeg  Linear -> x + Dropout(0.5)(Linear(GELU(x))) -> LayerNorm, to proj_dim (1024)
//
// Left out, as one encoder is trained per subject or subject pool here: the published code's
// per-subject token appended to the channel tokens (and cut off again after the transformer),
// its unused subject-wise linears, and its logit scale (which lives in the contrastive head).
#include <memory>

#include "engine/nn/container.h"
#include "models/eeg/encoder.h"
#include "models/eeg/itransformer.h"

namespace shallow::models {

class AtmsEncoder : public EegEncoder {
 public:
  static constexpr int64_t kDefaultEmbedDim = 1024;
  explicit AtmsEncoder(EegShape shape, int64_t proj_dim = kDefaultEmbedDim,
                       double proj_dropout = 0.5);
  Tensor forward(const Tensor& x) override;
  int64_t embed_dim() const override { return proj_dim_; }

 private:
  EegShape shape_;
  int64_t proj_dim_;
  std::shared_ptr<ChannelTransformer> encoder_;
  std::shared_ptr<nn::Sequential> enc_eeg_, proj_eeg_;
};

}  // namespace shallow::models
