// Convolutions on the CPU, in FLOP/s. The EEG encoders': TSConv's temporal convolution
// (input [B, 1, 63, 250], 40 filters of (1, 25)), its spatial one over the 63 electrodes
// ([B, 40, 63, 36] after the pooling, 40 filters of (63, 1)) and the 1x1 projection
// ([B, 40, 1, 36]); forward, and forward + backward, at B = 64: a training batch is larger, but
// 64 is already tens of milliseconds of work, and it keeps the PyTorch side-by-side short.
// CLIP RN50's (inference, batch 8): its 3x3 convolutions (padding 1) at each stage's size and
// the 1x1 ones into and out of its bottlenecks.
//
// Arguments name the whole shape, so that a comparison (bench/torch_ops.py) reads the shape back
// from the benchmark's name. `pad`: zero padding on each side of both spatial axes (stride 1).
// `backward`: 0 forward only; 1 also the weight and bias gradients (the first layer: its input
// is data); 2 the input gradient as well.
#include <benchmark/benchmark.h>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/cpu/parallel.h"

using namespace shallow;

namespace {

// Forward FLOPs (a multiply and an add per weight tap per output); each backward gradient of
// input or weight costs as much again. The bias is not counted.
double conv_flops(int64_t batch, int64_t c_in, int64_t c_out, int64_t h_out, int64_t w_out,
                  int64_t kh, int64_t kw) {
  return 2.0 * double(batch) * double(c_out) * double(h_out) * double(w_out) * double(c_in) *
         double(kh) * double(kw);
}

void BM_Conv2d(benchmark::State& state) {
  const int64_t batch = state.range(0), c_in = state.range(1), c_out = state.range(2);
  const int64_t h = state.range(3), w = state.range(4), kh = state.range(5), kw = state.range(6);
  const int64_t pad = state.range(7), backward = state.range(8);
  const int64_t h_out = h + 2 * pad - kh + 1, w_out = w + 2 * pad - kw + 1;
  Generator g(3);
  Tensor x = randn({batch, c_in, h, w}, DType::f32, &g);
  Tensor weight = mul(randn({c_out, c_in, kh, kw}, DType::f32, &g), 0.1);
  Tensor bias = randn({c_out}, DType::f32, &g);
  if (backward >= 1) weight.set_requires_grad(true), bias.set_requires_grad(true);
  if (backward >= 2) x.set_requires_grad(true);
  const Tensor grad = randn({batch, c_out, h_out, w_out}, DType::f32, &g);

  for (auto _ : state) {
    if (backward == 0) {
      NoGrad no_grad;
      Tensor out = conv2d(x, weight, bias, {1, 1}, {pad, pad});
      benchmark::DoNotOptimize(out.raw_data());
    } else {
      conv2d(x, weight, bias, {1, 1}, {pad, pad}).backward(grad);
      benchmark::DoNotOptimize(weight.grad().raw_data());
      weight.zero_grad(), bias.zero_grad();
      if (backward >= 2) x.zero_grad();
    }
  }
  const double forward = conv_flops(batch, c_in, c_out, h_out, w_out, kh, kw);
  state.counters["FLOP/s"] = benchmark::Counter(forward * double(1 + backward),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.counters["threads"] = cpu::num_threads();
}

}  // namespace

// Args: batch, in, out, h, w, kh, kw, pad, backward.
BENCHMARK(BM_Conv2d)
    ->ArgNames({"batch", "in", "out", "h", "w", "kh", "kw", "pad", "backward"})
    ->Args({64, 1, 40, 63, 250, 1, 25, 0, 0})   // TSConv temporal
    ->Args({64, 1, 40, 63, 250, 1, 25, 0, 1})
    ->Args({64, 40, 40, 63, 36, 63, 1, 0, 0})   // TSConv spatial, over the electrodes
    ->Args({64, 40, 40, 63, 36, 63, 1, 0, 2})
    ->Args({64, 40, 40, 1, 36, 1, 1, 0, 0})     // 1x1 projection
    ->Args({64, 40, 40, 1, 36, 1, 1, 0, 2})
    ->Args({8, 32, 64, 112, 112, 3, 3, 1, 0})   // RN50 stem, third convolution
    ->Args({8, 64, 64, 56, 56, 3, 3, 1, 0})     // RN50 3x3 of each stage
    ->Args({8, 128, 128, 28, 28, 3, 3, 1, 0})
    ->Args({8, 256, 256, 14, 14, 3, 3, 1, 0})
    ->Args({8, 512, 512, 7, 7, 3, 3, 1, 0})
    ->Args({8, 256, 64, 56, 56, 1, 1, 0, 0})    // RN50 1x1 into a bottleneck
    ->Args({8, 1024, 256, 14, 14, 1, 1, 0, 0})
    ->Args({8, 2048, 512, 7, 7, 1, 1, 0, 0})
    ->Args({8, 64, 256, 56, 56, 1, 1, 0, 0})    // RN50 1x1 out of a bottleneck
    ->Args({8, 128, 512, 28, 28, 1, 1, 0, 0})
    ->Args({8, 512, 2048, 7, 7, 1, 1, 0, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5);

BENCHMARK_MAIN();
