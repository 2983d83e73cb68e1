// The fused attention on the GPU (scaled_dot_product_attention on CUDA tensors, no mask), f32
// and bf16, forward and forward + backward, at ViT-B/16 batch 8 and 256 (12 heads of 64 over
// 197 tokens) and two long-sequence shapes. tests/gpu/torch_attention.py measures PyTorch's
// scaled_dot_product_attention at the same shapes, under the same names.
//
// A plain program (not Google Benchmark): it prints a table and, with --json FILE, writes the
// figures for tests/gpu/check.sh. For a profiler: --shape NAME runs that shape only, --once
// each variant once, untimed.
// Times are wall-clock over back-to-back calls after warm-up, with the device synchronized
// before and after; they include the op's own overhead (allocation of the output, autograd
// recording). TFLOP/s count the two matrix products of the
// forward (4 B H S^2 D) and, for forward + backward, 3.5 times that (the backward's five
// products), the convention of the flash-attention papers; the backward actually recomputes
// the scores, so it does more work than it is credited with.
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/cuda/api.h"
#include "engine/ops.h"
#include "bench/support/cuda_bench_args.h"
#include "bench/support/cuda_timing.h"

using namespace shallow;

namespace {

struct AttentionShape {
  const char* name;
  int64_t B, H, S, D;
};

struct Result {
  std::string shape, dtype, pass;
  int64_t B, H, S, D;
  double ms, tflops;
};

double max_abs_diff(const Tensor& x, const Tensor& y) {
  std::vector<double> a = x.to_vector<double>(), b = y.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  bench::CudaBenchArgs args;
  if (!bench::parse_cuda_bench_args(argc, argv, "bench_cuda_attention", args,
                                   /*profiling_options=*/true)) return 2;
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to measure\n");
    return 0;
  }
  try {
    std::vector<AttentionShape> shapes = {{"vit-b16 b8", 8, 12, 197, 64},
                                          {"vit-b16 b256", 256, 12, 197, 64},
                                          {"b1 h8 s2048 d64", 1, 8, 2048, 64},
                                          {"b4 h16 s1024 d128", 4, 16, 1024, 128}};
    if (args.quick) shapes.resize(1);
    if (!args.shape.empty()) {
      std::erase_if(shapes, [&](const AttentionShape& s) { return args.shape != s.name; });
      if (shapes.empty()) {
        std::fprintf(stderr, "bench_cuda_attention: no shape named '%s'\n", args.shape.c_str());
        return 2;
      }
    }
    const Device dev = Device::cuda(0);
    std::printf("device: %s\n", cuda_device_name(0).c_str());
    std::printf("%-18s %-5s %-24s %10s %10s\n", "shape", "dtype", "pass", "ms", "TFLOP/s");
    reset_peak_memory(dev);
    std::vector<Result> results;
    auto seconds_per_call = [&](auto&& f) {
      if (!args.once) return bench::cuda_seconds_per_call(f);
      f();
      cuda_synchronize();
      return 0.0;
    };
    for (const AttentionShape& s : shapes) {
      for (DType dt : {DType::f32, DType::bf16}) {
        Generator gen(1);
        const Shape shape = {s.B, s.H, s.S, s.D};
        const Tensor q = randn(shape, DType::f32, &gen).to(dt).to(dev);
        const Tensor k = randn(shape, DType::f32, &gen).to(dt).to(dev);
        const Tensor v = randn(shape, DType::f32, &gen).to(dt).to(dev);
        const Tensor g = randn(shape, DType::f32, &gen).to(dt).to(dev);
        const double flop = 4.0 * double(s.B * s.H) * double(s.S) * double(s.S) * double(s.D);

        const double t_fwd = seconds_per_call([&] {
          NoGrad no_grad;
          scaled_dot_product_attention(q, k, v);
        });
        auto both = [&] {
          Tensor ql = q.detach(), kl = k.detach(), vl = v.detach();  // fresh leaves, shared storage
          ql.set_requires_grad(), kl.set_requires_grad(), vl.set_requires_grad();
          scaled_dot_product_attention(ql, kl, vl).backward(g);
        };
        const double t_both = seconds_per_call(both);
        // bf16 also on the first tensor-core kernels, for comparison in the same run.
        // (and on the pipelined kernel with 16 and with 32 rows per warp, whichever the default is)
        double t_fwd_v1 = 0, t_fwd_r1 = 0, t_fwd_r2 = 0, t_both_v1 = 0, t_fwd_simt = 0,
               t_both_simt = 0;
        if (dt == DType::f32) {  // f32 also on the FMA tiles (the default runs tensor cores)
          ::setenv("SHALLOW_CUDA_ATTENTION", "simt", 1);
          t_fwd_simt = seconds_per_call([&] {
            NoGrad no_grad;
            scaled_dot_product_attention(q, k, v);
          });
          t_both_simt = seconds_per_call(both);
          ::unsetenv("SHALLOW_CUDA_ATTENTION");
        }
        if (dt == DType::bf16) {
          for (auto [choice, t] : {std::pair<const char*, double*>{"mma_v1", &t_fwd_v1},
                                   std::pair<const char*, double*>{"mma_r1", &t_fwd_r1},
                                   std::pair<const char*, double*>{"mma_r2", &t_fwd_r2}}) {
            ::setenv("SHALLOW_CUDA_ATTENTION", choice, 1);
            *t = seconds_per_call([&] {
              NoGrad no_grad;
              scaled_dot_product_attention(q, k, v);
            });
            ::unsetenv("SHALLOW_CUDA_ATTENTION");
          }
          ::setenv("SHALLOW_CUDA_ATTENTION", "mma_v1", 1);
          t_both_v1 = seconds_per_call(both);
          ::unsetenv("SHALLOW_CUDA_ATTENTION");
        }
        std::vector<std::tuple<const char*, double, double>> passes = {
            {"forward", t_fwd, flop}, {"forward+backward", t_both, 3.5 * flop}};
        if (dt == DType::f32) {
          passes.emplace_back("forward simt", t_fwd_simt, flop);
          passes.emplace_back("forward+backward simt", t_both_simt, 3.5 * flop);
        }
        if (dt == DType::bf16) {
          passes.emplace_back("forward mma_v1", t_fwd_v1, flop);
          passes.emplace_back("forward mma_r1", t_fwd_r1, flop);
          passes.emplace_back("forward mma_r2", t_fwd_r2, flop);
          passes.emplace_back("forward+backward mma_v1", t_both_v1, 3.5 * flop);
        }
        for (const auto& [pass, t, f] : passes) {
          Result r{s.name, dtype_name(dt), pass, s.B, s.H, s.S, s.D, t * 1e3, f / t / 1e12};
          std::printf("%-18s %-5s %-24s %10.4f %10.2f\n", r.shape.c_str(), r.dtype.c_str(),
                      r.pass.c_str(), r.ms, r.tflops);
          results.push_back(r);
        }
        // The smallest shape is also checked against the CPU op (the others would take long).
        if (&s == &shapes.front() && !args.once) {
          NoGrad no_grad;
          const Tensor on_gpu = scaled_dot_product_attention(q, k, v).to(Device::cpu());
          const Tensor on_cpu = scaled_dot_product_attention(q.to(Device::cpu()), k.to(Device::cpu()),
                                                             v.to(Device::cpu()));
          std::printf("  %s forward, largest |gpu - cpu|: %.3g\n", dtype_name(dt),
                      max_abs_diff(on_gpu, on_cpu));
        }
        std::fflush(stdout);
      }
    }
    const MemoryStats m = memory_stats(dev);
    std::printf("peak GPU memory held by tensors: %.1f MiB\n", double(m.peak_bytes) / (1 << 20));
    if (!args.json_path.empty()) {
      std::ofstream out(args.json_path);
      out << "{\n  \"device\": \"" << cuda_device_name(0) << "\",\n  \"peak_bytes\": "
          << m.peak_bytes << ",\n  \"results\": [\n";
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        out << "    {\"shape\": \"" << r.shape << "\", \"dtype\": \"" << r.dtype
            << "\", \"pass\": \"" << r.pass << "\", \"B\": " << r.B << ", \"H\": " << r.H
            << ", \"S\": " << r.S << ", \"D\": " << r.D << ", \"ms\": " << r.ms
            << ", \"tflops\": " << r.tflops << "}" << (i + 1 < results.size() ? ",\n" : "\n");
      }
      out << "  ]\n}\n";
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
