#pragma once
#include <optional>

#include "engine/tensor.h"

namespace shallow {

// softmax(q k^T * scale + mask) v, fused: q [..., Lq, E], k [..., Lk, E], v [..., Lk, Ev]
// (leading dims broadcast). mask: u8 (1 = attend) or a float additive mask, broadcastable to
// [..., Lq, Lk]. scale defaults to 1/sqrt(E). The backward recomputes the probabilities from
// the saved log-sum-exp instead of keeping the score matrix.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask = Tensor(), bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

}  // namespace shallow
