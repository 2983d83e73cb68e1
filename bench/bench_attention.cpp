// Fused scaled dot-product attention on the CPU: forward at the ViT-B/16 shape (batch 8,
// 12 heads, 197 tokens, head dim 64) and at a longer sequence, beside the unfused ops, plus
// one forward+backward.
// The FLOP/s counter counts the two matrix products (4 * Lq * Lk * E per head; the softmax
// is not counted), halved under the causal mask. Rates use wall time: the work is threaded.
// The *_1t cases run on one thread, for comparisons per CPU-second on a busy machine
// (against PyTorch's scaled_dot_product_attention under torch.set_num_threads(1)).
#include <benchmark/benchmark.h>

#include <cmath>

#include "engine/ops.h"

using namespace shallow;

namespace {

struct Shape4 {
  int64_t batch, heads, tokens, dim;
};

double attention_flops(const Shape4& s, bool causal) {
  const double f = 4.0 * double(s.batch * s.heads) * double(s.tokens) * double(s.tokens) * double(s.dim);
  return causal ? f / 2 : f;
}

// Runs the benchmark body on `threads` threads (0: the default), restoring the count after.
struct ThreadsFor {
  int before = num_threads();
  explicit ThreadsFor(int threads) {
    if (threads > 0) set_num_threads(threads);
  }
  ~ThreadsFor() { set_num_threads(before); }
};

void set_counters(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] = benchmark::Counter(flops_per_iteration,
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}

void attention_forward(benchmark::State& state, Shape4 s, bool causal, int threads = 0) {
  ThreadsFor use(threads);
  Generator g(0);
  const Shape shape = {s.batch, s.heads, s.tokens, s.dim};
  const Tensor q = randn(shape, DType::f32, &g), k = randn(shape, DType::f32, &g),
               v = randn(shape, DType::f32, &g);
  NoGrad no_grad;
  for (auto _ : state) {
    Tensor out = scaled_dot_product_attention(q, k, v, Tensor(), causal);
    benchmark::DoNotOptimize(out.raw_data());
  }
  set_counters(state, attention_flops(s, causal));
}

// The same forward unfused: matmul, softmax, matmul with the full score matrix in memory.
// Both use the same GEMM, so the ratio shows what the tiling costs or saves.
void attention_unfused(benchmark::State& state, Shape4 s) {
  Generator g(0);
  const Shape shape = {s.batch, s.heads, s.tokens, s.dim};
  const Tensor q = randn(shape, DType::f32, &g), k = randn(shape, DType::f32, &g),
               v = randn(shape, DType::f32, &g);
  const double scale = 1.0 / std::sqrt(double(s.dim));
  NoGrad no_grad;
  for (auto _ : state) {
    Tensor out = matmul(softmax(mul(matmul(q, k.transpose(-1, -2)), scale), -1), v);
    benchmark::DoNotOptimize(out.raw_data());
  }
  set_counters(state, attention_flops(s, false));
}

// Forward plus backward counted as 3.5x the forward, the FlashAttention papers' convention
// (the backward's five products: S again, dV, dP, dK, dQ). The float kernel does those five
// when batch entries outnumber threads twice over; with fewer entries it runs two passes
// (seven products: the query pass recomputes S and dP), so the rate understates its arithmetic.
void attention_forward_backward(benchmark::State& state, Shape4 s, int threads = 0) {
  ThreadsFor use(threads);
  Generator g(0);
  const Shape shape = {s.batch, s.heads, s.tokens, s.dim};
  Tensor q = randn(shape, DType::f32, &g).set_requires_grad(true);
  Tensor k = randn(shape, DType::f32, &g).set_requires_grad(true);
  Tensor v = randn(shape, DType::f32, &g).set_requires_grad(true);
  const Tensor grad = randn(shape, DType::f32, &g);
  for (auto _ : state) {
    scaled_dot_product_attention(q, k, v).backward(grad);
    benchmark::DoNotOptimize(q.grad().raw_data());
    q.zero_grad(), k.zero_grad(), v.zero_grad();
  }
  set_counters(state, 3.5 * attention_flops(s, false));
}

const Shape4 kViTB16{8, 12, 197, 64};
const Shape4 kLong{1, 12, 1024, 64};
const Shape4 kLong2048{1, 8, 2048, 64};  // a long sequence, as bench/cpu_report.sh compares

}  // namespace

BENCHMARK_CAPTURE(attention_forward, vit_b16, kViTB16, false)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_unfused, vit_b16, kViTB16)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_forward, long_1024, kLong, false)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_unfused, long_1024, kLong)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_forward, long_1024_causal, kLong, true)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_forward_backward, vit_b16, kViTB16)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_forward, long_2048, kLong2048, false)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_forward_backward, long_2048, kLong2048)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();

BENCHMARK_CAPTURE(attention_forward, vit_b16_1t, kViTB16, false, 1)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_forward_backward, vit_b16_1t, kViTB16, 1)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_forward, long_2048_1t, kLong2048, false, 1)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK_CAPTURE(attention_forward_backward, long_2048_1t, kLong2048, 1)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();

BENCHMARK_MAIN();
