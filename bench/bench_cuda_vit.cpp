// ViT-B/16 (CLIP's shape: 224 px, 12 blocks of width 768, quick GELU, projection to 512)
// forward on the GPU, images per second, in bf16 (weights and activations, f32 accumulation,
// norms and softmax in f32) and in f32. A plain program: it prints a table and, with --json
// FILE, writes the figures for tests/gpu/check.sh; tests/gpu/torch_models.py measures
// PyTorch's eager model of the same shape. Random weights: speed does not depend on them.
//
//   bench_cuda_vit [--json FILE] [--batch 256] [--seconds 2] [--no-breakdown]
//
// The breakdown times each op of a block alone at the model's shapes (bf16, the same batch) and
// scales it by how often a forward runs it: where the time of a forward goes.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/cuda/api.h"
#include "engine/ops.h"
#include "bench/support/cuda_timing.h"
#include "models/vit.h"

using namespace shallow;

namespace {

struct Result {
  std::string dtype;
  int64_t batch;
  double images_per_s, peak_mib, weights_mib;
};

Result run(DType dtype, int64_t batch, double seconds) {
  const Device dev = Device::cuda(0);
  models::VitConfig c = models::VitConfig::clip_b16();
  c.dtype = dtype;
  models::VisionTransformer vit(c);
  vit.eval();
  vit.to(dev);
  cuda_synchronize();
  const double weights = double(memory_stats(dev).current_bytes) / (1 << 20);
  Generator g(3);
  const Tensor images = randn({batch, 3, 224, 224}, DType::f32, &g).to(dev);
  NoGrad no_grad;
  auto once = [&] { return vit.forward(images); };
  once();  // warm-up: the allocator's blocks, cuBLAS's workspaces
  cuda_synchronize();
  reset_peak_memory(dev);
  int calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds || calls < 3) {
    once();
    cuda_synchronize();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double peak = double(memory_stats(dev).peak_bytes) / (1 << 20);
  return {dtype_name(dtype), batch, double(calls * batch) / elapsed, peak, weights};
}

struct Part {
  std::string op;
  int per_forward;
  double ms;
};

std::vector<Part> breakdown(int64_t batch) {
  const Device dev = Device::cuda(0);
  const DType dt = DType::bf16;
  const int64_t T = 197, D = 768, H = 12, hd = 64, F = 3072;
  Generator g(5);
  auto rnd = [&](Shape s) { return randn(s, DType::f32, &g).to(dt).to(dev); };
  NoGrad no_grad;
  const Tensor x = rnd({batch, T, D}), w = rnd({D, D}), b = rnd({D}), w1 = rnd({F, D}),
               b1 = rnd({F}), w2 = rnd({D, F}), h = rnd({batch, T, F}), ln_w = rnd({D});
  auto heads = [&](const Tensor& y) { return y.view({batch, T, H, hd}).transpose(1, 2); };
  const Tensor q = heads(rnd({batch, T, D})), k = heads(rnd({batch, T, D})), v = heads(rnd({batch, T, D}));
  const Tensor o = scaled_dot_product_attention(q, k, v);
  std::vector<Part> parts = {
      {"layer_norm [N*197, 768]", 2, 1e3 * bench::cuda_seconds_per_call([&] { layer_norm(x, {D}, ln_w, b); })},
      {"linear 768 -> 768 + bias (q, k, v, out)", 4, 1e3 * bench::cuda_seconds_per_call([&] { linear(x, w, b); })},
      {"attention 12 heads x 197 x 64", 1, 1e3 * bench::cuda_seconds_per_call([&] { scaled_dot_product_attention(q, k, v); })},
      {"merge heads (transpose + copy)", 1, 1e3 * bench::cuda_seconds_per_call([&] { o.transpose(1, 2).reshape({batch, T, D}); })},
      {"residual add", 2, 1e3 * bench::cuda_seconds_per_call([&] { add(x, x); })},
      {"linear 768 -> 3072 + bias + quick_gelu", 1, 1e3 * bench::cuda_seconds_per_call([&] { linear_act(x, w1, b1, LinearAct::quick_gelu); })},
      {"linear 3072 -> 768 + bias", 1, 1e3 * bench::cuda_seconds_per_call([&] { linear(h, w2, b); })},
  };
  for (Part& p : parts) p.per_forward *= 12;  // blocks
  return parts;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int64_t batch = 256;
  double seconds = 2.0;
  bool want_breakdown = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--no-breakdown")) {
      want_breakdown = false;
      continue;
    }
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      json_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) {
      batch = std::atoll(argv[++i]);
    } else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_cuda_vit [--json FILE] [--batch 256] [--seconds 2] [--no-breakdown]\n");
      return 2;
    }
  }
  if (!cuda_available() || batch <= 0) {
    std::fprintf(stderr, "bench_cuda_vit: %s\n", batch <= 0 ? "--batch must be positive" : "no CUDA device");
    return 2;
  }
  std::printf("ViT-B/16 forward on %s, batch %lld\n", cuda_device_name(0).c_str(), (long long)batch);
  std::vector<Result> results;
  for (DType t : {DType::bf16, DType::f32}) {
    try {
      results.push_back(run(t, batch, seconds));
      const Result& r = results.back();
      std::printf("  %-5s %9.1f images/s   peak %8.1f MiB (weights %.1f MiB)\n", r.dtype.c_str(),
                  r.images_per_s, r.peak_mib, r.weights_mib);
    } catch (const std::exception& e) {
      std::printf("  %-5s failed: %s\n", dtype_name(t), e.what());
    }
    cuda_empty_cache();
  }
  std::vector<Part> parts;
  if (want_breakdown) {
    try {
      parts = breakdown(batch);
      double total = 0;
      std::printf("bf16 blocks, op by op (ms per call x calls per forward = ms per forward):\n");
      for (const Part& p : parts) {
        std::printf("  %-42s %8.3f x %3d = %8.2f\n", p.op.c_str(), p.ms, p.per_forward, p.ms * p.per_forward);
        total += p.ms * p.per_forward;
      }
      std::printf("  %-42s %23.2f ms\n", "sum", total);
    } catch (const std::exception& e) {
      std::printf("breakdown failed: %s\n", e.what());
    }
  }
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << "{\n  \"device\": \"" << cuda_device_name(0) << "\",\n  \"model\": \"ViT-B/16 (CLIP)\",\n"
        << "  \"results\": [\n";
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      out << "    {\"dtype\": \"" << r.dtype << "\", \"batch\": " << r.batch
          << ", \"images_per_s\": " << r.images_per_s << ", \"peak_mib\": " << r.peak_mib
          << ", \"weights_mib\": " << r.weights_mib << "}" << (i + 1 < results.size() ? "," : "")
          << "\n";
    }
    out << "  ],\n  \"bf16_breakdown_ms\": {";
    for (size_t i = 0; i < parts.size(); ++i)
      out << (i ? ", " : "") << "\"" << parts[i].op << "\": " << parts[i].ms * parts[i].per_forward;
    out << "}\n}\n";
  }
  return results.empty() ? 1 : 0;
}
