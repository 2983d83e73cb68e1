// bf16 GEMM throughput (f32 accumulation) at the ViT-B/16 token products and square sizes, in
// GFLOP/s: B packed per call as matmul does, B pre-packed as for constant weights, the scalar
// fallback at one size, and the f32 kernel beside it. bench/compare_gemm_bf16.py runs PyTorch's
// bf16 torch.matmul on the same shapes and threads and prints the ratios.
//
//   [SHALLOW_THREADS=n] build/bin/bench_gemm_bf16 [--benchmark_filter=NT/]
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/parallel.h"

namespace {

using shallow::cpu::bf16;

std::vector<bf16> random_bf16(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<bf16> v(static_cast<size_t>(n));
  for (bf16& x : v) x = bf16(normal(rng));
  return v;
}

void set_counters(benchmark::State& state, int64_t M, int64_t N, int64_t K) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(M) * double(N) * double(K),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["threads"] = shallow::cpu::num_threads();
}

// x [M, K] times a weight [N, K] transposed, as linear layers do; bf16 out.
void BM_GemmBf16_NT(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const auto a = random_bf16(M * K, 1), b = random_bf16(N * K, 2);
  std::vector<bf16> c(size_t(M * N));
  for (auto _ : state) {
    shallow::cpu::gemm_bf16<bf16>(false, true, M, N, K, a.data(), K, b.data(), K, nullptr,
                                  c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, M, N, K);
}

void BM_GemmBf16_NT_Prepacked(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const auto a = random_bf16(M * K, 1), b = random_bf16(N * K, 2);
  const shallow::cpu::PackedBf16B packed(true, K, N, b.data(), K);
  std::vector<bf16> c(size_t(M * N));
  for (auto _ : state) {
    shallow::cpu::gemm_bf16_packed<bf16>(false, M, a.data(), K, packed, nullptr, c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, M, N, K);
}

void BM_GemmBf16_NN(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const auto a = random_bf16(M * K, 1), b = random_bf16(K * N, 2);
  std::vector<float> c(size_t(M * N));
  for (auto _ : state) {
    shallow::cpu::gemm_bf16<float>(false, false, M, N, K, a.data(), K, b.data(), N, nullptr,
                                   c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, M, N, K);
}

void BM_GemmBf16_Scalar(benchmark::State& state) {
  shallow::cpu::set_gemm_bf16_path(shallow::cpu::GemmBf16Path::scalar);
  BM_GemmBf16_NT(state);
  shallow::cpu::set_gemm_bf16_path(shallow::cpu::GemmBf16Path::automatic);
}

void BM_GemmF32_NT(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  std::vector<float> a(size_t(M * K), 0.5f), b(size_t(N * K), 0.25f), c(size_t(M * N));
  for (auto _ : state) {
    shallow::cpu::gemm<float>(false, true, M, N, K, 1.0f, a.data(), K, b.data(), K, 0.0f,
                              c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, M, N, K);
}

// Args are (M, N, K): the ViT-B/16 qkv and fc1 products at batch 8 (1576 tokens, width 768),
// fc2, and squares.
#define SHAPES                                                                        \
  ->Args({1576, 2304, 768})->Args({1576, 3072, 768})->Args({1576, 768, 3072})        \
  ->Args({1024, 1024, 1024})->Args({4096, 4096, 4096})->Unit(benchmark::kMillisecond) \
  ->UseRealTime()

BENCHMARK(BM_GemmBf16_NT) SHAPES;
// The same linears at batch 1: B/16's 197 tokens and B/32's 50 (the weight read in place).
BENCHMARK(BM_GemmBf16_NT)->Args({197, 2304, 768})->Args({197, 768, 3072})->Args({50, 2304, 768})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GemmBf16_NT_Prepacked) SHAPES;
BENCHMARK(BM_GemmBf16_NN) SHAPES;
BENCHMARK(BM_GemmBf16_Scalar)->Args({1024, 1024, 1024})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GemmF32_NT)->Args({1576, 2304, 768})->Args({1024, 1024, 1024})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

// SHALLOW_THREADS (bench/support/threads_from_env.cpp) sets the thread count.
BENCHMARK_MAIN();
