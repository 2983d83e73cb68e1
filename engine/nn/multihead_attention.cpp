#include "engine/nn/multihead_attention.h"

#include <cmath>
#include <limits>

#include "engine/nn/init.h"
#include "engine/ops/attention.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"

namespace shallow::nn {
namespace {

constexpr const char* kName = "MultiheadAttention";

// A PyTorch-style mask as a float additive mask: u8 (true = masked) becomes -inf / 0, a float
// mask is used as it is.
Tensor additive_mask(const Tensor& mask, DType dtype, const char* which) {
  if (is_floating(mask.dtype())) return mask.to(dtype);
  SH_CHECK(mask.dtype() == DType::u8, kName, ": ", which, " must be u8 (boolean) or floating, got ",
           dtype_name(mask.dtype()), " of shape ", shape_str(mask.shape()));
  Tensor m = mask.contiguous();
  Tensor out = Tensor::empty(m.shape(), DType::f64);
  const uint8_t* src = m.data<uint8_t>();
  double* dst = out.data<double>();
  for (int64_t i = 0; i < m.numel(); ++i)
    dst[i] = src[i] ? -std::numeric_limits<double>::infinity() : 0.0;
  return out.to(dtype);
}

// softmax(q k^T * scale + mask) with dropout on the probabilities, then times v: the unfused
// form, used only when attention dropout is active (the fused op has no dropout).
Tensor attention_with_dropout(const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& mask, double p) {
  Tensor scores = matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(q.size(-1))));
  if (mask.defined()) scores = scores + mask;
  Tensor shifted = scores - max(scores, {-1}, true).detach();  // the shift does not change softmax
  Tensor e = exp(shifted);
  Tensor probs = e / sum(e, {-1}, true);
  return matmul(dropout(probs, p, true), v);
}

}  // namespace

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads,
                                       MultiheadAttentionOptions opt)
    : Module(kName), embed_dim_(embed_dim), num_heads_(num_heads), opt_(opt) {
  SH_CHECK(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0, kName,
           ": embed_dim (", embed_dim, ") must be a positive multiple of num_heads (", num_heads, ")");
  SH_CHECK(opt.dropout >= 0.0 && opt.dropout < 1.0, kName, ": dropout must be in [0, 1), got ",
           opt.dropout);
  head_dim_ = embed_dim / num_heads;
  // PyTorch's initialization: xavier-uniform in_proj, zero biases, out_proj as a Linear.
  Tensor w = Tensor::empty({3 * embed_dim, embed_dim}, opt.dtype);
  init::xavier_uniform_(w);
  in_proj_weight = register_parameter("in_proj_weight", w);
  if (opt.bias) in_proj_bias = register_parameter("in_proj_bias", Tensor::zeros({3 * embed_dim}, opt.dtype));
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, opt.bias, opt.dtype));
  if (opt.bias) init::zeros_(out_proj->bias);
}

MultiheadAttention::Heads MultiheadAttention::project(const Tensor& query, const Tensor& key,
                                                      const Tensor& value) const {
  const int64_t e = embed_dim_;
  auto rows = [&](const Tensor& t, int64_t i) {
    return t.defined() ? t.slice(0, i * e, (i + 1) * e) : Tensor();
  };
  // [N, len, E] -> [N, H, len, D]
  auto heads = [&](const Tensor& t) {
    return t.reshape({t.size(0), t.size(1), num_heads_, head_dim_}).permute({0, 2, 1, 3});
  };
  if (query.impl_ptr() == key.impl_ptr() && key.impl_ptr() == value.impl_ptr()) {
    Tensor qkv = linear(query, in_proj_weight, in_proj_bias);  // one product for all three
    return {heads(qkv.slice(-1, 0, e)), heads(qkv.slice(-1, e, 2 * e)),
            heads(qkv.slice(-1, 2 * e, 3 * e))};
  }
  return {heads(linear(query, rows(in_proj_weight, 0), rows(in_proj_bias, 0))),
          heads(linear(key, rows(in_proj_weight, 1), rows(in_proj_bias, 1))),
          heads(linear(value, rows(in_proj_weight, 2), rows(in_proj_bias, 2)))};
}

Tensor MultiheadAttention::combined_mask(const Tensor& key_padding_mask, const Tensor& attn_mask,
                                         int64_t n, int64_t l, int64_t s, DType dtype) const {
  Tensor mask;
  if (attn_mask.defined()) {
    const bool per_query = attn_mask.dim() == 2 && attn_mask.size(0) == l && attn_mask.size(1) == s;
    const bool per_head = attn_mask.dim() == 3 && attn_mask.size(0) == n * num_heads_ &&
                          attn_mask.size(1) == l && attn_mask.size(2) == s;
    SH_CHECK(per_query || per_head, kName, ": attn_mask must be [L, S] = [", l, ", ", s,
             "] or [N * num_heads, L, S] = [", n * num_heads_, ", ", l, ", ", s, "], got ",
             shape_str(attn_mask.shape()));
    mask = additive_mask(attn_mask, dtype, "attn_mask");
    mask = per_query ? mask.reshape({1, 1, l, s}) : mask.reshape({n, num_heads_, l, s});
  }
  if (key_padding_mask.defined()) {
    SH_CHECK(key_padding_mask.dim() == 2 && key_padding_mask.size(0) == n &&
                 key_padding_mask.size(1) == s,
             kName, ": key_padding_mask must be [N, S] = [", n, ", ", s, "], got ",
             shape_str(key_padding_mask.shape()));
    Tensor kpm = additive_mask(key_padding_mask, dtype, "key_padding_mask").reshape({n, 1, 1, s});
    mask = mask.defined() ? mask + kpm : kpm;
  }
  return mask;
}

Tensor MultiheadAttention::forward(const Tensor& query_in, const Tensor& key_in,
                                   const Tensor& value_in, const Tensor& key_padding_mask_in,
                                   const Tensor& attn_mask) {
  const int64_t e = embed_dim_;
  const bool unbatched = query_in.dim() == 2;
  SH_CHECK((query_in.dim() == 3 || unbatched) && key_in.dim() == query_in.dim() &&
               value_in.dim() == query_in.dim(),
           kName, ": query, key and value must all be 3-D (or all 2-D, unbatched), got ",
           shape_str(query_in.shape()), ", ", shape_str(key_in.shape()), ", ",
           shape_str(value_in.shape()));
  SH_CHECK(query_in.size(-1) == e && key_in.size(-1) == e && value_in.size(-1) == e, kName,
           ": embed_dim is ", e, ", got query ", shape_str(query_in.shape()), ", key ",
           shape_str(key_in.shape()), ", value ", shape_str(value_in.shape()));

  // Work batch first: [N, len, E]. Views only; identical inputs stay identical.
  auto batch_first = [&](const Tensor& t) {
    if (unbatched) return t.unsqueeze(0);
    return opt_.batch_first ? t : t.transpose(0, 1);
  };
  const bool self_attention =
      query_in.impl_ptr() == key_in.impl_ptr() && key_in.impl_ptr() == value_in.impl_ptr();
  Tensor query = batch_first(query_in);
  Tensor key = self_attention ? query : batch_first(key_in);
  Tensor value = self_attention ? query : batch_first(value_in);
  const int64_t n = query.size(0), l = query.size(1), s = key.size(1);
  SH_CHECK(key.size(0) == n && value.size(0) == n && value.size(1) == s, kName,
           ": query, key and value disagree on batch or key length: ", shape_str(query_in.shape()),
           ", ", shape_str(key_in.shape()), ", ", shape_str(value_in.shape()));

  Tensor key_padding_mask = key_padding_mask_in;
  if (unbatched && key_padding_mask.defined() && key_padding_mask.dim() == 1)
    key_padding_mask = key_padding_mask.unsqueeze(0);

  Heads h = project(query, key, value);
  Tensor mask = combined_mask(key_padding_mask, attn_mask, n, l, s, h.q.dtype());
  Tensor attended = is_training() && opt_.dropout > 0.0
                        ? attention_with_dropout(h.q, h.k, h.v, mask, opt_.dropout)
                        : scaled_dot_product_attention(h.q, h.k, h.v, mask);  // [N, H, L, D]

  // Back to the caller's layout before the output projection.
  Tensor merged;
  if (unbatched) merged = attended.squeeze(0).transpose(0, 1).reshape({l, e});
  else if (opt_.batch_first) merged = attended.permute({0, 2, 1, 3}).reshape({n, l, e});
  else merged = attended.permute({2, 0, 1, 3}).reshape({l, n, e});
  return out_proj->forward(merged);
}

}  // namespace shallow::nn
