#pragma once
// Initial values for parameters, as torch.nn.init, drawn from engine/random.h (so a seed gives
// the same model on every machine; the numbers differ from PyTorch's own generator). Each
// function fills `t` in place and returns it.
#include "engine/random.h"
#include "engine/tensor.h"

namespace shallow::nn::init {

Tensor& uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);

// fan_in / fan_out of a weight laid out as [out, in, *kernel] (Linear, Conv).
int64_t fan_in(const Tensor& weight);
int64_t fan_out(const Tensor& weight);

// U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (leaky ReLU slope a).
// PyTorch's Linear and Conv use a = sqrt(5), which makes b = 1 / sqrt(fan_in).
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, Generator* gen = nullptr);
// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);

}  // namespace shallow::nn::init
