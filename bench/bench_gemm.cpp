// GEMM throughput of the CPU kernel at the shapes the models use, in GFLOP/s, on 1 and 2
// threads. Compare with PyTorch by running torch.matmul on the same shapes and threads in the
// same minute (the figures move with the machine's load).
#include <benchmark/benchmark.h>

#include <vector>

#include "engine/random.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_config.h"
#include "kernels/cpu/parallel.h"

namespace {

// Args: M, N, K, threads. C[M,N] = op(A) op(B), with A stored [K,M] when trans_a and B stored
// [N,K] when trans_b (a linear layer's weight).
void run_gemm(benchmark::State& state, bool trans_a, bool trans_b,
              shallow::cpu::GemmActivation act = shallow::cpu::GemmActivation::none) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  shallow::cpu::set_num_threads(int(state.range(3)));
  shallow::Generator g(1);
  std::vector<float> a = shallow::randn({M, K}, shallow::DType::f32, &g).to_vector<float>();
  std::vector<float> b = shallow::randn({K, N}, shallow::DType::f32, &g).to_vector<float>();
  std::vector<float> bias = shallow::randn({N}, shallow::DType::f32, &g).to_vector<float>();
  std::vector<float> c(size_t(M * N));
  shallow::cpu::GemmEpilogue<float> ep;
  if (act != shallow::cpu::GemmActivation::none) {
    ep.bias = bias.data();
    ep.act = act;
  }
  for (auto _ : state) {
    shallow::cpu::gemm_ex<float>(trans_a, trans_b, M, N, K, 1.0f, a.data(), trans_a ? M : K,
                                 b.data(), trans_b ? K : N, 0.0f, c.data(), N, ep);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(M) * double(N) * double(K),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(shallow::cpu::gemm_isa_name(shallow::cpu::gemm_isa()));
  shallow::cpu::set_num_threads(0);
}

void BM_Gemm_NN(benchmark::State& s) { run_gemm(s, false, false); }
void BM_Gemm_NT(benchmark::State& s) { run_gemm(s, false, true); }  // x W^T: linear forward
void BM_Gemm_TN(benchmark::State& s) { run_gemm(s, true, false); }  // g^T x: linear weight grad
// Linear forward with bias and GELU fused into the gemm (the ViT MLP's first layer).
void BM_Gemm_NT_BiasGelu(benchmark::State& s) {
  run_gemm(s, false, true, shallow::cpu::GemmActivation::gelu);
}

void square_and_vit(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) {
    for (int64_t n : {512, 1024, 2048, 4096}) b->Args({n, n, n, threads});
    // ViT-B/16 at batch 8: 8 * 197 tokens; qkv, MLP up and MLP down.
    b->Args({1576, 2304, 768, threads});
    b->Args({1576, 3072, 768, threads});
    b->Args({1576, 768, 3072, threads});
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

// The ViT linears at batch 1: B/16's 197 tokens and B/32's 50, x W^T (few rows: the weight
// is read more than the product is worked).
void vit_batch1(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (int64_t rows : {50, 197}) {
      b->Args({rows, 2304, 768, threads});
      b->Args({rows, 768, 3072, threads});
    }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

// The EEG projector (4250 features to 1024) at batch 1024: forward x W^T is NT with K = 4250;
// its backward is NN (g W) and TN (g^T x) with N = 4250.
void eeg(benchmark::internal::Benchmark* b, bool forward) {
  for (int threads : {1, 2})
    b->Args(forward ? std::vector<int64_t>{1024, 1024, 4250, threads}
                    : std::vector<int64_t>{1024, 4250, 1024, threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Gemm_NN)->Apply(square_and_vit)->Apply([](auto* b) { eeg(b, false); });
BENCHMARK(BM_Gemm_NT)->Apply(square_and_vit)->Apply([](auto* b) { eeg(b, true); })->Apply(vit_batch1);
BENCHMARK(BM_Gemm_TN)->Apply([](auto* b) { eeg(b, false); });
BENCHMARK(BM_Gemm_NT_BiasGelu)
    ->Args({1576, 3072, 768, 1})
    ->Args({1576, 3072, 768, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
