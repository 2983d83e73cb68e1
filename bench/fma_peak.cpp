// The machine's arithmetic peak, measured: independent fused multiply-add chains on 1 thread
// and on N threads, in f32 GFLOP/s, and the bf16 dot-product peak (vdpbf16ps) where the CPU has
// AVX512_BF16. The kernel benchmarks report their rates as a share of these figures.
//
//   fma_peak [--threads N] [--seconds S] [--json]
//
// Each thread keeps 16 vector accumulators: an FMA has a latency of about 4 cycles and a core
// issues up to 2 a cycle, so at least 8 independent chains are needed to keep the units busy.
// The ISA is chosen at run time; each kernel is compiled for its own target, so the program
// runs on any x86-64 CPU whatever the build flags.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kChains = 16;
constexpr long kInnerSteps = 4096;  // steps between clock reads

// Each function runs `steps` rounds of kChains independent FMAs and returns a value that depends
// on every accumulator, so that the compiler cannot drop the work. x * 0.999999 + 1e-6 stays
// near 1: no overflow, no denormals.

// Through memory: GCC 12's _mm512_reduce_add_ps trips its own -Wuninitialized.
__attribute__((target("avx512f"))) float sum_lanes(__m512 v) {
  float lanes[16];
  _mm512_storeu_ps(lanes, v);
  float total = 0;
  for (float x : lanes) total += x;
  return total;
}

__attribute__((target("avx512f"))) float chains_avx512(long steps) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(1.0f + float(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (long s = 0; s < steps; ++s)
#pragma GCC unroll 16  // fully unrolled, so the accumulators live in registers
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return sum_lanes(sum);
}

__attribute__((target("avx2,fma"))) float chains_avx2(long steps) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(1.0f + float(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (long s = 0; s < steps; ++s)
#pragma GCC unroll 16  // fully unrolled, so the accumulators live in registers
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}

// vdpbf16ps: each of the 16 lanes adds two bf16 products to its f32 accumulator (4 FLOPs).
__attribute__((target("avx512f,avx512bf16"))) float chains_bf16(long steps) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(1.0f + float(i));
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
  for (long s = 0; s < steps; ++s)
#pragma GCC unroll 16  // fully unrolled, so the accumulators live in registers
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return sum_lanes(sum);
}

struct Kernel {
  const char* name;
  float (*run)(long);
  double flops_per_step;  // all chains together
};

volatile float g_sink;

// Runs the kernel on `threads` threads at once for about `seconds`; returns GFLOP/s of all
// threads together, the best of three tries (the machine may be busy with other work).
double measure(const Kernel& k, int threads, double seconds) {
  double best = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::vector<long> steps(size_t(threads), 0);
    std::vector<std::thread> pool;
    const auto start = std::chrono::steady_clock::now();
    const auto until = start + std::chrono::duration<double>(seconds / 3);
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        float sink = 0;
        while (std::chrono::steady_clock::now() < until) {
          sink += k.run(kInnerSteps);
          steps[size_t(t)] += kInnerSteps;
        }
        g_sink = sink;
      });
    for (auto& th : pool) th.join();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    long total = 0;
    for (long s : steps) total += s;
    best = std::max(best, double(total) * k.flops_per_step / elapsed * 1e-9);
  }
  return best;
}

int positive_int(const char* flag, const char* text) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (*end != '\0' || v <= 0) {
    std::fprintf(stderr, "error: %s needs a positive integer, got '%s'\n", flag, text);
    std::exit(2);
  }
  return int(v);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  double seconds = 1.5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = positive_int("--threads", argv[++i]);
    } else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
      if (seconds <= 0) { std::fprintf(stderr, "error: --seconds must be positive\n"); return 2; }
    } else if (!std::strcmp(argv[i], "--json")) {
      json = true;
    } else {
      std::fprintf(stderr, "usage: fma_peak [--threads N] [--seconds S] [--json]\n");
      return 2;
    }
  }

  __builtin_cpu_init();
  Kernel f32{"none", nullptr, 0};
  if (__builtin_cpu_supports("avx512f")) f32 = {"avx512f", chains_avx512, kChains * 16 * 2.0};
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) f32 = {"avx2", chains_avx2, kChains * 8 * 2.0};
  const bool has_bf16 = __builtin_cpu_supports("avx512bf16");
  const Kernel bf16{"avx512bf16", chains_bf16, kChains * 16 * 4.0};

  double f32_1 = 0, f32_n = 0, bf16_1 = 0, bf16_n = 0;
  if (f32.run) f32_1 = measure(f32, 1, seconds), f32_n = measure(f32, threads, seconds);
  if (has_bf16) bf16_1 = measure(bf16, 1, seconds), bf16_n = measure(bf16, threads, seconds);

  if (json) {
    std::printf("{\"threads\": %d, \"f32_isa\": \"%s\", \"f32_gflops_1\": %.1f, \"f32_gflops_n\": %.1f, "
                "\"bf16\": %s, \"bf16_gflops_1\": %.1f, \"bf16_gflops_n\": %.1f}\n",
                threads, f32.name, f32_1, f32_n, has_bf16 ? "true" : "false", bf16_1, bf16_n);
    return 0;
  }
  std::printf("f32 FMA (%s): %8.1f GFLOP/s on 1 thread, %8.1f on %d\n", f32.name, f32_1, f32_n, threads);
  if (has_bf16)
    std::printf("bf16 dot (vdpbf16ps): %8.1f GFLOP/s on 1 thread, %8.1f on %d\n", bf16_1, bf16_n, threads);
  else
    std::printf("bf16 dot: this CPU has no AVX512_BF16\n");
  return 0;
}
