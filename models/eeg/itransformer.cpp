#include "models/eeg/itransformer.h"

#include <cmath>

#include "engine/ops/attention.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/softmax.h"

namespace shallow::models {
namespace {

// A module with no parameters of its own that only groups children under one name, so that
// the parameter names follow the published nesting ("enc_embedding.value_embedding.weight").
class Group : public nn::Module {
 public:
  explicit Group(const char* type_name) : nn::Module(type_name) {}
};

// A kernel-size-1 Conv1d over [N, D, L] is a Linear over the last dim of [N, L, D]: apply it
// that way and skip the two transposes.
Tensor pointwise(const nn::Conv1d& conv, const Tensor& x) {
  const Tensor& w = conv.weight;
  return linear(x, w.reshape({w.size(0), w.size(1)}), conv.bias);
}

}  // namespace

ChannelAttention::ChannelAttention(int64_t d_model, int64_t n_heads, double dropout)
    : nn::Module("AttentionLayer"), n_heads_(n_heads) {
  const int64_t d_keys = d_model / n_heads;
  SH_CHECK(d_keys > 0, "AttentionLayer: d_model ", d_model, " is smaller than n_heads ", n_heads);
  query_ = register_module("query_projection", std::make_shared<nn::Linear>(d_model, d_keys * n_heads));
  key_ = register_module("key_projection", std::make_shared<nn::Linear>(d_model, d_keys * n_heads));
  value_ = register_module("value_projection", std::make_shared<nn::Linear>(d_model, d_keys * n_heads));
  out_ = register_module("out_projection", std::make_shared<nn::Linear>(d_keys * n_heads, d_model));
  auto inner = register_module("inner_attention", std::make_shared<Group>("FullAttention"));
  attention_dropout_ = inner->register_module("dropout", std::make_shared<nn::Dropout>(dropout));
}

Tensor ChannelAttention::forward(const Tensor& x) {
  check_rank(x, {3});
  const int64_t n = x.size(0), l = x.size(1);
  // [N, L, H*E] -> [N, H, L, E]
  auto heads = [&](const Tensor& t) {
    return t.reshape({n, l, n_heads_, -1}).permute({0, 2, 1, 3});
  };
  const Tensor q = heads(query_->forward(x)), k = heads(key_->forward(x)),
               v = heads(value_->forward(x));
  Tensor attended;
  if (attention_dropout_->is_training() && attention_dropout_->p() > 0.0) {
    // Dropout on the probabilities needs them in the open; the fused op never forms them.
    const Tensor scores = matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(q.size(-1))));
    attended = matmul(attention_dropout_->forward(softmax(scores, -1)), v);
  } else {
    attended = scaled_dot_product_attention(q, k, v);
  }
  return out_->forward(attended.permute({0, 2, 1, 3}).reshape({n, l, -1}));
}

ChannelEncoderLayer::ChannelEncoderLayer(const ChannelTransformerConfig& c)
    : nn::Module("EncoderLayer") {
  attention_ = register_module("attention",
                               std::make_shared<ChannelAttention>(c.d_model, c.n_heads, c.dropout));
  conv1_ = register_module("conv1", std::make_shared<nn::Conv1d>(c.d_model, c.d_ff, 1));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv1d>(c.d_ff, c.d_model, 1));
  norm1_ = register_module("norm1", std::make_shared<nn::LayerNorm>(c.d_model));
  norm2_ = register_module("norm2", std::make_shared<nn::LayerNorm>(c.d_model));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
}

Tensor ChannelEncoderLayer::forward(const Tensor& x_in) {
  const Tensor x = norm1_->forward(x_in + dropout_->forward(attention_->forward(x_in)));
  Tensor y = dropout_->forward(gelu(pointwise(*conv1_, x)));
  y = dropout_->forward(pointwise(*conv2_, y));
  return norm2_->forward(x + y);
}

ChannelTransformer::ChannelTransformer(const ChannelTransformerConfig& c)
    : nn::Module("iTransformer") {
  SH_CHECK(c.times > 0 && c.d_model > 0 && c.n_heads > 0 && c.d_ff > 0 && c.layers > 0,
           "iTransformer: sizes must be positive, got times ", c.times, ", d_model ", c.d_model,
           ", n_heads ", c.n_heads, ", d_ff ", c.d_ff, ", layers ", c.layers);
  auto embedding = register_module("enc_embedding", std::make_shared<Group>("DataEmbedding"));
  value_embedding_ = embedding->register_module(
      "value_embedding", std::make_shared<nn::Linear>(c.times, c.d_model));
  embedding_dropout_ =
      embedding->register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));

  auto encoder = register_module("encoder", std::make_shared<Group>("Encoder"));
  layers_ = encoder->register_module("attn_layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.layers; ++i)
    layers_->push_back(std::make_shared<ChannelEncoderLayer>(c));
  norm_ = encoder->register_module("norm", std::make_shared<nn::LayerNorm>(c.d_model));
}

Tensor ChannelTransformer::forward(const Tensor& x) {
  check_rank(x, {3});
  Tensor h = embedding_dropout_->forward(value_embedding_->forward(x));
  for (const auto& layer : *layers_) h = layer->forward(h);
  return norm_->forward(h);
}

}  // namespace shallow::models
