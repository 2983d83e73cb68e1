#pragma once
#include <limits>
#include <vector>

#include "engine/tensor.h"

namespace shallow::optim {

constexpr double kInfNorm = std::numeric_limits<double>::infinity();

// torch.nn.utils.clip_grad_norm_: the norm of all gradients together (parameters without one
// are skipped); every gradient is then scaled by min(1, max_norm / (total + 1e-6)). Returns the
// total norm before clipping. norm_type: any p > 0, or kInfNorm for the largest |g|.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);

}  // namespace shallow::optim
