#pragma once
// torch.nn.MultiheadAttention, same parameters and names: in_proj_weight [3E, E] (q, k, v rows
// stacked), in_proj_bias [3E], out_proj (Linear E -> E). The attention itself is the fused
// scaled_dot_product_attention op, so no attention weights are returned.
#include <memory>

#include "engine/nn/linear.h"
#include "engine/nn/module.h"

namespace shallow::nn {

struct MultiheadAttentionOptions {
  double dropout = 0.0;     // on the attention probabilities, in training
  bool bias = true;         // in_proj_bias and out_proj.bias
  bool batch_first = false; // inputs [N, L, E] instead of [L, N, E]
  DType dtype = DType::f32;
};

class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, MultiheadAttentionOptions opt = {});

  // query [L, N, E], key and value [S, N, E] ([N, L, E] and [N, S, E] with batch_first;
  // unbatched [L, E] and [S, E] also work). As in PyTorch, masks are either u8/boolean, where 1
  // (true) means "may NOT attend", or floating point, added to the attention scores:
  //   key_padding_mask [N, S]   (padded keys);
  //   attn_mask        [L, S] or [N * num_heads, L, S].
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value,
                 const Tensor& key_padding_mask = Tensor(), const Tensor& attn_mask = Tensor());
  // Self-attention: forward(x, x, x).
  Tensor forward(const Tensor& x) override { return forward(x, x, x); }

  int64_t embed_dim() const { return embed_dim_; }
  int64_t num_heads() const { return num_heads_; }

  Tensor in_proj_weight;
  Tensor in_proj_bias;  // undefined without bias
  std::shared_ptr<Linear> out_proj;

 private:
  // Query, key and value projected and split into heads: [N, H, len, D].
  struct Heads { Tensor q, k, v; };
  Heads project(const Tensor& query, const Tensor& key, const Tensor& value) const;
  Tensor combined_mask(const Tensor& key_padding_mask, const Tensor& attn_mask, int64_t n,
                       int64_t l, int64_t s, DType dtype) const;

  int64_t embed_dim_, num_heads_, head_dim_;
  MultiheadAttentionOptions opt_;
};

}  // namespace shallow::nn
