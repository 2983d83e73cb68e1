// GEMM throughput on the GPU: the engine's own kernels (CudaGemm::tiled: bf16 on tensor cores,
// f32 on 128 x 128 SIMT tiles) against cuBLAS, f32 and bf16, at 4096^3 and at the ViT-B/16
// shapes (batch 8: 1576 tokens; qkv 768 -> 2304, MLP 768 -> 3072), plus the MLP's first layer
// with its bias and gelu ("+bias+gelu": fused into our kernel's epilogue, one extra pass after
// cuBLAS). A plain program (not Google Benchmark): it prints a table and, with --json FILE,
// writes the figures for tests/gpu/check.sh. Each pair of results is also compared, so a fast
// but wrong kernel shows up here too. Times are bench/support/cuda_timing.h's: the device
// synchronized around back-to-back calls, after warm-up calls.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "engine/cuda/api.h"
#include "engine/cuda/gemm_ops.h"
#include "engine/cuda/gemm_wgmma_ops.h"
#include "engine/ops.h"
#include "bench/support/cuda_bench_args.h"
#include "bench/support/cuda_timing.h"

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

// Seconds per call with the GEMM implementation g, timed as every GPU benchmark is (and as
// tests/gpu/torch_timing.py times PyTorch's side).
double seconds_per_call(const Tensor& a, const Tensor& b, const Tensor& bias,
                        cpu::GemmActivation act, Tensor& c, CudaGemm g) {
  set_cuda_gemm(g);
  return bench::cuda_seconds_per_call([&] { run_once(a, b, bias, act, c); }, 4096);
}

}  // namespace

int main(int argc, char** argv) {
  bench::CudaBenchArgs args;
  if (!bench::parse_cuda_bench_args(argc, argv, "bench_cuda_gemm", args)) return 2;
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
    if (args.quick)
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
                   bench::max_rel_diff(c_tiled, c_cublas)};
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
    if (!args.json_path.empty()) {
      std::ofstream out(args.json_path);
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
