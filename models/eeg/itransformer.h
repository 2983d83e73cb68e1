#pragma once
// The channel-token transformer of ATM-S (Li et al., "Visual decoding and reconstruction via
// EEG embeddings with guided diffusion", NeurIPS 2024), which is iTransformer's encoder as the
// Time-Series-Library writes it: each channel's whole time course is one token.
//
//   enc_embedding.value_embedding   Linear(T, d_model) on x [N, C, T] -> [N, C, d_model], Dropout
//   encoder.attn_layers.<i>         post-norm layers:
//       x = norm1(x + Dropout(attention(x)))
//       x = norm2(x + Dropout(conv2(Dropout(GELU(conv1(x))))))     conv1, conv2: 1x1 Conv1d
//   encoder.norm                    LayerNorm(d_model)
//
// The attention has n_heads heads of d_model / n_heads (rounded down, as published: 4 heads of
// 62 for d_model 250), with separate query/key/value/out projections and dropout on the
// attention probabilities.
#include <memory>

#include "engine/nn/container.h"
#include "engine/nn/conv.h"
#include "engine/nn/dropout.h"
#include "engine/nn/layer_norm.h"
#include "engine/nn/linear.h"

namespace shallow::models {

struct ChannelTransformerConfig {
  int64_t times = 0;      // the input's time points: each token's raw length
  int64_t d_model = 0;    // ATM: d_model = T = 250
  int64_t n_heads = 4;
  int64_t d_ff = 256;
  int64_t layers = 1;
  double dropout = 0.25;
};

// Time-Series-Library's AttentionLayer around FullAttention. x [N, L, d_model].
class ChannelAttention : public nn::Module {
 public:
  ChannelAttention(int64_t d_model, int64_t n_heads, double dropout);
  Tensor forward(const Tensor& x) override;

 private:
  int64_t n_heads_;
  std::shared_ptr<nn::Linear> query_, key_, value_, out_;
  std::shared_ptr<nn::Dropout> attention_dropout_;  // "inner_attention.dropout", as published
};

class ChannelEncoderLayer : public nn::Module {
 public:
  explicit ChannelEncoderLayer(const ChannelTransformerConfig& config);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<ChannelAttention> attention_;
  std::shared_ptr<nn::Conv1d> conv1_, conv2_;
  std::shared_ptr<nn::LayerNorm> norm1_, norm2_;
  std::shared_ptr<nn::Dropout> dropout_;
};

// x [N, C, T] -> [N, C, d_model].
class ChannelTransformer : public nn::Module {
 public:
  explicit ChannelTransformer(const ChannelTransformerConfig& config);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Linear> value_embedding_;
  std::shared_ptr<nn::Dropout> embedding_dropout_;
  std::shared_ptr<nn::ModuleList> layers_;
  std::shared_ptr<nn::LayerNorm> norm_;
};

}  // namespace shallow::models
