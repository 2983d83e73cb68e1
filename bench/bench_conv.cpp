// The EEG encoders' convolutions on the CPU, in FLOP/s: TSConv's temporal convolution
// (input [B, 1, 63, 250], 40 filters of (1, 25)), its spatial one over the 63 electrodes
// ([B, 40, 63, 36] after the pooling, 40 filters of (63, 1)) and the 1x1 projection
// ([B, 40, 1, 36]). Forward, and forward + backward, at B = 64: a training batch is larger, but
// 64 is already tens of milliseconds of work, and it keeps the PyTorch side-by-side short.
//
// Arguments name the whole shape, so that a comparison (bench/torch_ops.py) reads the shape back
// from the benchmark's name. `backward`: 0 forward only; 1 also the weight and bias gradients
// (the first layer: its input is data); 2 the input gradient as well.
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
  const int64_t backward = state.range(7);
  Generator g(3);
  Tensor x = randn({batch, c_in, h, w}, DType::f32, &g);
  Tensor weight = mul(randn({c_out, c_in, kh, kw}, DType::f32, &g), 0.1);
  Tensor bias = randn({c_out}, DType::f32, &g);
  if (backward >= 1) weight.set_requires_grad(true), bias.set_requires_grad(true);
  if (backward >= 2) x.set_requires_grad(true);
  const Tensor grad = randn({batch, c_out, h - kh + 1, w - kw + 1}, DType::f32, &g);

  for (auto _ : state) {
    if (backward == 0) {
      NoGrad no_grad;
      Tensor out = conv2d(x, weight, bias);
      benchmark::DoNotOptimize(out.raw_data());
    } else {
      conv2d(x, weight, bias).backward(grad);
      benchmark::DoNotOptimize(weight.grad().raw_data());
      weight.zero_grad(), bias.zero_grad();
      if (backward >= 2) x.zero_grad();
    }
  }
  const double forward = conv_flops(batch, c_in, c_out, h - kh + 1, w - kw + 1, kh, kw);
  state.counters["FLOP/s"] = benchmark::Counter(forward * double(1 + backward),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.counters["threads"] = cpu::num_threads();
}

}  // namespace

// Args: batch, in, out, h, w, kh, kw, backward.
BENCHMARK(BM_Conv2d)
    ->ArgNames({"batch", "in", "out", "h", "w", "kh", "kw", "backward"})
    ->Args({64, 1, 40, 63, 250, 1, 25, 0})   // TSConv temporal
    ->Args({64, 1, 40, 63, 250, 1, 25, 1})
    ->Args({64, 40, 40, 63, 36, 63, 1, 0})   // TSConv spatial, over the electrodes
    ->Args({64, 40, 40, 63, 36, 63, 1, 2})
    ->Args({64, 40, 40, 1, 36, 1, 1, 0})     // 1x1 projection
    ->Args({64, 40, 40, 1, 36, 1, 1, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5);

BENCHMARK_MAIN();
