// Choosing the float micro-kernel from the CPU's features, once, with an override for tests.
#include <atomic>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm_kernels.h"

namespace shallow::cpu {
namespace {

// -1: not forced.
std::atomic<int> forced_isa{-1};

bool cpu_has(GemmIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  switch (isa) {
    case GemmIsa::generic:
      return true;
    case GemmIsa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case GemmIsa::avx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
#else
  return isa == GemmIsa::generic;
#endif
}

GemmIsa best_isa() {
  static const GemmIsa best = cpu_has(GemmIsa::avx512) ? GemmIsa::avx512
                              : cpu_has(GemmIsa::avx2) ? GemmIsa::avx2
                                                       : GemmIsa::generic;
  return best;
}

}  // namespace

const char* gemm_isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::generic:
      return "generic";
    case GemmIsa::avx2:
      return "avx2";
    case GemmIsa::avx512:
      return "avx512";
  }
  return "?";
}

bool gemm_isa_supported(GemmIsa isa) { return cpu_has(isa); }

GemmIsa gemm_isa() {
  const int f = forced_isa.load(std::memory_order_relaxed);
  return f >= 0 ? GemmIsa(f) : best_isa();
}

void set_gemm_isa_for_testing(GemmIsa isa) {
  if (!cpu_has(isa))
    throw std::invalid_argument(std::string("gemm: this CPU cannot run the ") + gemm_isa_name(isa) +
                                " kernel");
  forced_isa.store(int(isa), std::memory_order_relaxed);
}

void reset_gemm_isa() { forced_isa.store(-1, std::memory_order_relaxed); }

GemmBlocking gemm_blocking_f32(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::avx512:
      return gemm_detail::avx512_kernel_f32().blocking;
    case GemmIsa::avx2:
      return gemm_detail::avx2_kernel_f32().blocking;
    case GemmIsa::generic:
      break;
  }
  return gemm_detail::generic_kernel_f32().blocking;
}

GemmBlocking gemm_blocking_f64() { return gemm_detail::generic_kernel_f64().blocking; }

namespace gemm_detail {

template <>
const MicroKernel<float>& active_kernel<float>() {
  switch (gemm_isa()) {
    case GemmIsa::avx512:
      return avx512_kernel_f32();
    case GemmIsa::avx2:
      return avx2_kernel_f32();
    case GemmIsa::generic:
      break;
  }
  return generic_kernel_f32();
}

template <>
const MicroKernel<double>& active_kernel<double>() {
  return generic_kernel_f64();
}

Grid choose_grid(int threads, int64_t m_tiles, int64_t n_tiles) {
  Grid best{threads, 1};
  int64_t best_cost = -1;
  for (int tm = threads; tm >= 1; --tm) {
    if (threads % tm) continue;
    const int tn = threads / tm;
    const int64_t cost = ceil_div(m_tiles, tm) * ceil_div(n_tiles, tn);
    if (best_cost < 0 || cost < best_cost) {
      best = {tm, tn};
      best_cost = cost;
    }
  }
  return best;
}

}  // namespace gemm_detail

}  // namespace shallow::cpu
