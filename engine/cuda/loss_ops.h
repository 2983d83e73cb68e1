#pragma once
// Cross-entropy on CUDA tensors (declared in every build; engine/cuda/without_cuda_loss.cpp
// holds the stand-ins). Tensors as the op prepared them: contiguous, on one CUDA device,
// logits/loss/lse/row_scale/gx f32 or f64, target i64 checked to be in [0, classes).
#include "engine/tensor.h"

namespace shallow::gpu {

void cross_entropy(int64_t rows, int64_t classes, const Tensor& logits, const Tensor& target,
                   double smoothing, Tensor& loss, Tensor& lse, const char* name);
void cross_entropy_backward(int64_t rows, int64_t classes, const Tensor& logits,
                            const Tensor& target, double smoothing, const Tensor& lse,
                            const Tensor& row_scale, Tensor& gx, const char* name);

}  // namespace shallow::gpu
