// Convolution throughput on the GPU: the engine's implicit-GEMM kernels against cuDNN, f32, at
// the EEG encoders' shapes (batch 1024: input [1024, 1, 17, 250], temporal (40, 1, 1, 25),
// then spatial (40, 40, 17, 1), then a 1x1 40 -> 40 on the pooled [1024, 40, 1, 36]) and a
// ResNet 3x3 64 -> 64 at 56x56, batch 32. Forward alone, and forward plus the three
// gradients (input, weight, bias). A plain program (not Google Benchmark) like
// bench_cuda_gemm: a table, and with --json FILE the figures; the two implementations'
// results are compared, so a fast but wrong kernel shows up here too. Times are wall-clock
// over back-to-back calls after warm-up (which includes cuDNN's algorithm search).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "engine/cuda/api.h"
#include "engine/cuda/conv_ops.h"
#include "engine/ops.h"
#include "bench/support/cuda_bench_args.h"
#include "bench/support/cuda_timing.h"

using namespace shallow;

namespace {

struct ConvShape {
  const char* name;
  Shape x, w;
  int64_t pad_h, pad_w;
};

struct Result {
  std::string shape;
  double fwd_ms[2], fwd_bwd_ms[2];  // [implicit_gemm, cudnn]; < 0: not measured
  double fwd_tflops[2], fwd_bwd_tflops[2];
  double max_rel_diff;
};

// Largest |x - y| / (|y| + 1), computed on the device (the outputs reach 600 MB).

}  // namespace

int main(int argc, char** argv) {
  bench::CudaBenchArgs args;
  if (!bench::parse_cuda_bench_args(argc, argv, "bench_cuda_conv", args)) return 2;
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to measure\n");
    return 0;
  }
  try {
    const int64_t B = args.quick ? 64 : 1024, Br = args.quick ? 4 : 32;
    const std::vector<ConvShape> shapes = {
        {"eeg temporal 1x25", {B, 1, 17, 250}, {40, 1, 1, 25}, 0, 0},
        {"eeg spatial 17x1", {B, 40, 17, 226}, {40, 40, 17, 1}, 0, 0},
        {"eeg 1x1 40->40", {B, 40, 1, 36}, {40, 40, 1, 1}, 0, 0},
        {"resnet 3x3 64 56x56", {Br, 64, 56, 56}, {64, 64, 3, 3}, 1, 1},
    };
    const bool have_cudnn = cuda_conv_has_cudnn();
    std::printf("device: %s; cuDNN %s\n", cuda_device_name(0).c_str(),
                have_cudnn ? "linked" : "not in this build");
    std::printf("%-22s %10s %10s %8s %12s %12s %8s %12s\n", "shape (f32)", "fwd ms", "cudnn", "ratio",
                "fwd+bwd ms", "cudnn", "ratio", "max rel diff");
    const CudaConv initial = cuda_conv();
    reset_peak_memory(Device::cuda(0));
    std::vector<Result> results;
    const Device dev = Device::cuda(0);
    for (const ConvShape& cs : shapes) {
      Generator gen(1);
      Tensor x = randn(cs.x, DType::f32, &gen).to(dev);
      Tensor w = randn(cs.w, DType::f32, &gen).to(dev);
      Tensor b = randn({cs.w[0]}, DType::f32, &gen).to(dev);
      cpu::Conv2dShape s;
      s.N = cs.x[0], s.C_in = cs.x[1], s.H = cs.x[2], s.W = cs.x[3];
      s.C_out = cs.w[0], s.kH = cs.w[2], s.kW = cs.w[3];
      s.pad_h = cs.pad_h, s.pad_w = cs.pad_w;
      const Shape y_shape = {s.N, s.C_out, s.H_out(), s.W_out()};
      Tensor gy = randn(y_shape, DType::f32, &gen).to(dev);
      const double flop = 2.0 * double(s.N) * double(s.C_out) * double(s.H_out() * s.W_out()) *
                          double(s.C_in * s.kH * s.kW);
      Result r{cs.name, {-1, -1}, {-1, -1}, {0, 0}, {0, 0}, 0};
      std::vector<std::vector<Tensor>> outputs;  // {y, gx, gw, gb} per implementation
      for (int p = 0; p < (have_cudnn ? 2 : 1); ++p) {
        set_cuda_conv(p == 0 ? CudaConv::implicit_gemm : CudaConv::cudnn);
        Tensor y = Tensor::empty(y_shape, DType::f32, dev);
        Tensor gx = Tensor::empty(x.shape(), DType::f32, dev);
        Tensor gw = Tensor::empty(w.shape(), DType::f32, dev);
        Tensor gb = Tensor::empty({s.C_out}, DType::f32, dev);
        auto forward = [&] { gpu::conv2d_forward(s, x, w, b, y, "bench"); };
        auto forward_backward = [&] {
          forward();
          gpu::conv2d_backward_input(s, gy, w, gx, "bench");
          gpu::conv2d_backward_weight(s, gy, x, gw, "bench");
          gpu::conv2d_backward_bias(s, gy, gb, "bench");
        };
        const double t_f = bench::cuda_seconds_per_call(forward, 1 << 12);
        const double t_fb = bench::cuda_seconds_per_call(forward_backward, 1 << 12);
        r.fwd_ms[p] = t_f * 1e3, r.fwd_bwd_ms[p] = t_fb * 1e3;
        r.fwd_tflops[p] = flop / t_f / 1e12, r.fwd_bwd_tflops[p] = 3 * flop / t_fb / 1e12;
        outputs.push_back({y, gx, gw, gb});
      }
      if (have_cudnn)
        for (size_t i = 0; i < 4; ++i)
          r.max_rel_diff = std::max(r.max_rel_diff, bench::max_rel_diff(outputs[0][i], outputs[1][i]));
      std::printf("%-22s %10.3f %10.3f %8.3f %12.3f %12.3f %8.3f %12.2e\n", cs.name, r.fwd_ms[0],
                  r.fwd_ms[1], have_cudnn ? r.fwd_ms[1] / r.fwd_ms[0] : 0.0, r.fwd_bwd_ms[0],
                  r.fwd_bwd_ms[1], have_cudnn ? r.fwd_bwd_ms[1] / r.fwd_bwd_ms[0] : 0.0,
                  r.max_rel_diff);
      std::fflush(stdout);
      results.push_back(r);
    }
    std::printf("ratio = cuDNN time / implicit-GEMM time (below 1: cuDNN is faster)\n");
    set_cuda_conv(initial);
    const MemoryStats m = memory_stats(dev);
    std::printf("peak GPU memory held by tensors: %.1f MiB (reserved now %.1f MiB)\n",
                double(m.peak_bytes) / (1 << 20), double(m.reserved_bytes) / (1 << 20));
    if (!args.json_path.empty()) {
      std::ofstream out(args.json_path);
      out << "{\n  \"device\": \"" << cuda_device_name(0) << "\",\n  \"cudnn\": "
          << (have_cudnn ? "true" : "false") << ",\n  \"peak_bytes\": " << m.peak_bytes
          << ",\n  \"results\": [\n";
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        out << "    {\"shape\": \"" << r.shape << "\", \"dtype\": \"f32\""
            << ", \"implicit_gemm_fwd_ms\": " << r.fwd_ms[0]
            << ", \"implicit_gemm_fwd_bwd_ms\": " << r.fwd_bwd_ms[0]
            << ", \"implicit_gemm_fwd_tflops\": " << r.fwd_tflops[0]
            << ", \"implicit_gemm_fwd_bwd_tflops\": " << r.fwd_bwd_tflops[0];
        if (have_cudnn)
          out << ", \"cudnn_fwd_ms\": " << r.fwd_ms[1] << ", \"cudnn_fwd_bwd_ms\": " << r.fwd_bwd_ms[1]
              << ", \"cudnn_fwd_tflops\": " << r.fwd_tflops[1]
              << ", \"cudnn_fwd_bwd_tflops\": " << r.fwd_bwd_tflops[1]
              << ", \"max_rel_diff\": " << r.max_rel_diff;
        out << "}" << (i + 1 < results.size() ? ",\n" : "\n");
      }
      out << "  ]\n}\n";
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
