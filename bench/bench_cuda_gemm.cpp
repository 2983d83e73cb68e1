// GEMM throughput on the GPU: the engine's own kernels (CudaGemm::tiled: bf16 on tensor cores,
// f32 on 128 x 128 SIMT tiles) against cuBLAS, f32 and bf16, at 4096^3 and at the ViT-B/16
// shapes (batch 8: 1576 tokens; qkv 768 -> 2304, MLP 768 -> 3072), plus the MLP's first layer
// with its bias and gelu ("+bias+gelu": fused into our kernel's epilogue, one extra pass after
// cuBLAS). A plain program (not Google Benchmark): it prints a table and, with --json FILE,
// writes the figures for tests/gpu/check.sh. Each pair of results is also compared, so a fast
// but wrong kernel shows up here too. Times come from CUDA events on the engine's stream
// around back-to-back launches, after warm-up launches.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "engine/cuda/api.h"
#include "engine/cuda/gemm_ops.h"
#include "engine/cuda/gemm_wgmma_ops.h"
#include "engine/cuda/runtime.h"
#include "engine/ops.h"

using namespace shallow;

namespace {

struct Shape3 {
  const char* name;
  int64_t M, N, K;
  bool bias = false;  // a linear layer's bias in the epilogue, then `act`
  cpu::GemmActivation act = cpu::GemmActivation::none;
  bool bf16_only = false;
};

struct Result {
  std::string shape, dtype, kernel;
  int64_t M, N, K;
  double tiled_tflops, cublas_tflops, max_rel_diff;
};

// C = A B^T (B stored [N, K], a linear layer's weight), with the bias and activation when asked.
void run_once(const Tensor& a, const Tensor& b, const Tensor& bias, cpu::GemmActivation act,
              Tensor& c) {
  const int64_t M = a.size(0), K = a.size(1), N = b.size(0);
  gpu::GemmEpilogueArgs ep;
  ep.bias = bias;
  ep.act = act;
  gpu::gemm_ex(1, false, true, M, N, K, 1.0, a, K, 0, b, K, 0, 0.0, c, N, 0, ep, "bench");
}

// Seconds per call, from CUDA events on the device's stream around a run of calls long enough
// to take about a quarter of a second (the run length found from a short timed run first).
double seconds_per_call(const Tensor& a, const Tensor& b, const Tensor& bias,
                        cpu::GemmActivation act, Tensor& c, CudaGemm g) {
  set_cuda_gemm(g);
  cudaStream_t stream = gpu::stream_for(c.device(), "bench");
  cudaEvent_t start, stop;
  SH_CUDA_CHECK(cudaEventCreate(&start), "bench");
  SH_CUDA_CHECK(cudaEventCreate(&stop), "bench");
  auto timed = [&](int calls) {
    SH_CUDA_CHECK(cudaEventRecord(start, stream), "bench");
    for (int i = 0; i < calls; ++i) run_once(a, b, bias, act, c);
    SH_CUDA_CHECK(cudaEventRecord(stop, stream), "bench");
    SH_CUDA_CHECK(cudaEventSynchronize(stop), "bench");
    float ms = 0;
    SH_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop), "bench");
    return double(ms) / 1e3;
  };
  for (int i = 0; i < 5; ++i) run_once(a, b, bias, act, c);  // warm-up: clocks, caches, first-use setup
  cuda_synchronize();
  const double probe = timed(3) / 3;
  const int calls = int(std::min(4096.0, std::max(10.0, 0.25 / std::max(probe, 1e-7))));
  const double s = timed(calls) / calls;
  SH_CUDA_CHECK(cudaEventDestroy(start), "bench");
  SH_CUDA_CHECK(cudaEventDestroy(stop), "bench");
  return s;
}

// Largest |x - y| / (|y| + 1) over the elements (values here are of order sqrt(K)).
double max_rel_diff(const Tensor& x, const Tensor& y) {
  std::vector<double> a = x.to_vector<double>(), b = y.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]) / (std::fabs(b[i]) + 1));
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else {
      std::fprintf(stderr, "usage: bench_cuda_gemm [--json FILE] [--quick]\n");
      return 2;
    }
  }
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to measure\n");
    return 0;
  }
  try {
    using Act = cpu::GemmActivation;
    // batch 8 (1576 tokens) and batch 256 (50432 tokens, the ViT benchmark's linears)
    std::vector<Shape3> shapes = {
        {"square 4096", 4096, 4096, 4096},
        {"vit-b16 qkv", 1576, 2304, 768},
        {"vit-b16 mlp", 1576, 3072, 768},
        {"vit-b16 mlp +bias+gelu", 1576, 3072, 768, true, Act::gelu},
        {"vit-b16 b256 q +bias", 50432, 768, 768, true, Act::none, true},
        {"vit-b16 b256 fc1 +bias+quick_gelu", 50432, 3072, 768, true, Act::quick_gelu, true},
        {"vit-b16 b256 fc2 +bias", 50432, 768, 3072, true, Act::none, true}};
    if (quick)
      shapes = {{"square 1024", 1024, 1024, 1024},
                {"square 1024 +bias+gelu", 1024, 1024, 1024, true, Act::gelu}};
    std::printf("device: %s\n", cuda_device_name(0).c_str());
    std::printf("%-24s %-5s %6s %6s %6s  %12s %12s %8s %12s  %s\n", "shape", "dtype", "M", "N",
                "K", "tiled TF/s", "cuBLAS TF/s", "ratio", "max rel diff", "tiled kernel");
    const CudaGemm initial = cuda_gemm();
    reset_peak_memory(Device::cuda(0));
    std::vector<Result> results;
    for (const Shape3& s : shapes) {
      for (DType dt : {DType::f32, DType::bf16}) {
        if (s.bf16_only && dt != DType::bf16) continue;
        Generator gen(1);
        Tensor a = randn({s.M, s.K}, DType::f32, &gen).to(dt).to(Device::cuda(0));
        Tensor b = randn({s.N, s.K}, DType::f32, &gen).to(dt).to(Device::cuda(0));
        Tensor bias;
        if (s.bias) bias = randn({s.N}, DType::f32, &gen).to(dt).to(Device::cuda(0));
        Tensor c_tiled = Tensor::empty({s.M, s.N}, dt, Device::cuda(0));
        Tensor c_cublas = Tensor::empty({s.M, s.N}, dt, Device::cuda(0));
        const double flop = 2.0 * double(s.M) * double(s.N) * double(s.K);
        const double t_cublas = seconds_per_call(a, b, bias, s.act, c_cublas, CudaGemm::cublas);
        std::string kernel = gpu::tiled_gemm_kernel(1, a, s.K, 0, b, s.K, 0);
        // The Hopper kernel is timed in both cluster shapes, the default's row first.
        std::vector<int> clusters = {gpu::bf16_wgmma_cluster()};
        if (kernel == "bf16_wgmma") clusters.push_back(3 - clusters[0]);
        for (int cluster : clusters) {
          gpu::set_bf16_wgmma_cluster(cluster);
          const double t_tiled = seconds_per_call(a, b, bias, s.act, c_tiled, CudaGemm::tiled);
          const bool other = cluster != clusters[0];
          Result r{other ? std::string(s.name) + " [cluster " + std::to_string(cluster) + "]" : s.name,
                   dtype_name(dt), kernel + (kernel == "bf16_wgmma" ? " cluster " + std::to_string(cluster) : ""),
                   s.M, s.N, s.K, flop / t_tiled / 1e12, flop / t_cublas / 1e12,
                   max_rel_diff(c_tiled, c_cublas)};
          std::printf("%-24s %-5s %6lld %6lld %6lld  %12.2f %12.2f %8.3f %12.2e  %s\n",
                      r.shape.c_str(), r.dtype.c_str(), (long long)r.M, (long long)r.N,
                      (long long)r.K, r.tiled_tflops, r.cublas_tflops,
                      r.tiled_tflops / r.cublas_tflops, r.max_rel_diff, r.kernel.c_str());
          std::fflush(stdout);
          results.push_back(r);
        }
        gpu::set_bf16_wgmma_cluster(clusters[0]);
      }
    }
    set_cuda_gemm(initial);
    const MemoryStats m = memory_stats(Device::cuda(0));
    std::printf("peak GPU memory held by tensors: %.1f MiB (reserved now %.1f MiB)\n",
                double(m.peak_bytes) / (1 << 20), double(m.reserved_bytes) / (1 << 20));
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      out << "{\n  \"device\": \"" << cuda_device_name(0) << "\",\n  \"peak_bytes\": "
          << m.peak_bytes << ",\n  \"results\": [\n";
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        out << "    {\"shape\": \"" << r.shape << "\", \"dtype\": \"" << r.dtype << "\", \"M\": "
            << r.M << ", \"N\": " << r.N << ", \"K\": " << r.K
            << ", \"tiled_tflops\": " << r.tiled_tflops << ", \"cublas_tflops\": " << r.cublas_tflops
            << ", \"ratio_tiled_to_cublas\": " << r.tiled_tflops / r.cublas_tflops
            << ", \"max_rel_diff\": " << r.max_rel_diff << ", \"tiled_kernel\": \"" << r.kernel
            << "\"}"
            << (i + 1 < results.size() ? ",\n" : "\n");
      }
      out << "  ]\n}\n";
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
