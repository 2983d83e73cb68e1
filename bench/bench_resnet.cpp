// CLIP's RN50 (OpenCLIP's ModifiedResNet, random weights, evaluation mode) forward on the CPU,
// in images/s, at batch 1, 8 and 32 (shallow extract's default), f32. bench/cpu_report.sh
// (part "resnet") runs OpenCLIP's RN50 beside it; bench_conv has its convolutions alone.
//
//   [SHALLOW_THREADS=n] build/bin/bench_resnet [--benchmark_filter=batch:8]
#include <benchmark/benchmark.h>

#include <memory>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/cpu/parallel.h"
#include "models/clip_resnet.h"

namespace {

using namespace shallow;

// Built once: constructing RN50 draws 38M random weights.
models::ClipResNet& rn50() {
  static std::unique_ptr<models::ClipResNet> m;
  if (!m) m = std::make_unique<models::ClipResNet>(models::ClipResNetConfig::rn50());
  return *m;
}

// Args: batch.
void BM_ResNetForward(benchmark::State& state) {
  const int64_t batch = state.range(0);
  models::ClipResNet& net = rn50();
  Generator g(7);
  const Tensor images = randn({batch, 3, 224, 224}, DType::f32, &g);
  NoGrad no_grad;
  net.forward_layers(images, {models::kFinalLayer});  // warm up the allocator and the pool
  for (auto _ : state) {
    const auto out = net.forward_layers(images, {models::kFinalLayer});
    benchmark::DoNotOptimize(out.begin()->second.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * batch);  // items_per_second: images/s
  state.counters["threads"] = cpu::num_threads();
}

BENCHMARK(BM_ResNetForward)
    ->ArgNames({"batch"})
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)  // shallow extract's default batch
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
