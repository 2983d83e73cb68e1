// ViT-B/16 and ViT-B/32 (CLIP's shapes, random weights) forward on the CPU, in images/s, at
// batch 1 and 8; and the cost of extracting layer 6 against the full forward (half the blocks:
// it should take about half the time). bench/compare_vit.py runs PyTorch on the same shapes and
// threads and prints the ratios.
//
//   [SHALLOW_THREADS=n] build/bin/bench_vit [--benchmark_filter=patch:16]
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <utility>

#include "engine/autograd.h"
#include "engine/random.h"
#include "kernels/cpu/parallel.h"
#include "models/vit.h"

namespace {

using shallow::models::kFinalLayer;
using shallow::models::VisionTransformer;
using shallow::models::VitConfig;

// Built once per shape and dtype: constructing ViT-B draws 86M random weights.
VisionTransformer& model(int64_t patch, shallow::DType dtype = shallow::DType::f32) {
  static std::map<std::pair<int64_t, shallow::DType>, std::unique_ptr<VisionTransformer>> models;
  auto& m = models[{patch, dtype}];
  if (!m) {
    VitConfig c = patch == 16 ? VitConfig::clip_b16() : VitConfig::clip_b32();
    c.dtype = dtype;
    m = std::make_unique<VisionTransformer>(c);
  }
  return *m;
}

// Args: patch (16 or 32), batch, layer (-1: the final embedding, i.e. every block).
void run_vit(benchmark::State& state, shallow::DType dtype) {
  const int64_t patch = state.range(0), batch = state.range(1), layer = state.range(2);
  VisionTransformer& vit = model(patch, dtype);
  shallow::Generator g(7);
  const shallow::Tensor images = shallow::randn({batch, 3, 224, 224}, shallow::DType::f32, &g);
  shallow::NoGrad no_grad;
  vit.forward_layers(images, {layer});  // warm up the allocator and the thread pool
  for (auto _ : state) {
    const auto out = vit.forward_layers(images, {layer});
    benchmark::DoNotOptimize(out.begin()->second.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * batch);  // reported as items_per_second: images/s
  state.counters["blocks"] = double(layer == kFinalLayer ? vit.config().depth : layer);
  state.counters["threads"] = shallow::cpu::num_threads();
  state.SetLabel("B/" + std::to_string(patch) + " batch " + std::to_string(batch) +
                 (layer == kFinalLayer ? " full" : " to layer " + std::to_string(layer)) +
                 (dtype == shallow::DType::bf16 ? " bf16" : ""));
}

void BM_VitForward(benchmark::State& state) { run_vit(state, shallow::DType::f32); }
// bf16 weights and activations, the linear layers on the bf16 GEMM (shallow extract --dtype bf16).
void BM_VitForwardBf16(benchmark::State& state) { run_vit(state, shallow::DType::bf16); }

BENCHMARK(BM_VitForward)
    ->ArgNames({"patch", "batch", "layer"})
    ->Args({32, 1, kFinalLayer})
    ->Args({32, 8, kFinalLayer})
    ->Args({16, 1, kFinalLayer})
    ->Args({16, 8, kFinalLayer})
    ->Args({16, 8, 6})  // against the row above: the cost of stopping at layer 6 of 12
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

BENCHMARK(BM_VitForwardBf16)
    ->ArgNames({"patch", "batch", "layer"})
    ->Args({16, 1, kFinalLayer})
    ->Args({16, 8, kFinalLayer})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

}  // namespace

// SHALLOW_THREADS (bench/support/threads_from_env.cpp) sets the thread count.
BENCHMARK_MAIN();
