// GEMM throughput of the CPU kernel at the shapes the models use, in GFLOP/s.
#include <benchmark/benchmark.h>

#include <vector>

#include "engine/random.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace {

void run_gemm(benchmark::State& state, bool trans_b) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  shallow::Generator g(1);
  std::vector<float> a = shallow::randn({M, K}, shallow::DType::f32, &g).to_vector<float>();
  std::vector<float> b = shallow::randn({K, N}, shallow::DType::f32, &g).to_vector<float>();
  std::vector<float> c(size_t(M * N));
  for (auto _ : state) {
    shallow::cpu::gemm<float>(false, trans_b, M, N, K, 1.0f, a.data(), K, b.data(),
                              trans_b ? K : N, 0.0f, c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(M) * double(N) * double(K),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["threads"] = shallow::cpu::num_threads();
}

void BM_Gemm_NN(benchmark::State& s) { run_gemm(s, false); }
void BM_Gemm_NT(benchmark::State& s) { run_gemm(s, true); }  // x W^T, as linear layers do

// Square sizes, the ViT-B/16 token GEMMs at batch 8 (1576 tokens), and the EEG projector.
#define SHAPES                                                                  \
  ->Args({512, 512, 512})->Args({1024, 1024, 1024})->Args({2048, 2048, 2048})  \
  ->Args({1576, 2304, 768})->Args({1576, 3072, 768})->Args({1576, 768, 3072})  \
  ->Args({1024, 1024, 4250})->Unit(benchmark::kMillisecond)->UseRealTime()

BENCHMARK(BM_Gemm_NN) SHAPES;
BENCHMARK(BM_Gemm_NT) SHAPES;

}  // namespace

BENCHMARK_MAIN();
