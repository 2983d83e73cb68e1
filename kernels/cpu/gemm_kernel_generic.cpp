// The portable micro-kernel: plain C++ over a small register tile, for CPUs without a
// hand-written kernel, and for double (gradient checks) everywhere.
#include "kernels/cpu/gemm_epilogue.h"
#include "kernels/cpu/gemm_kernels.h"

namespace shallow::cpu::gemm_detail {
namespace {

template <class T, int MR, int NR>
void tile(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  for (int i = 0; i < MR; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0))
      for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j];
    else
      for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
  }
}

template <class T>
void epilogue(T* c, int64_t ldc, int64_t m, int64_t n, const T* bias, bool per_row,
              GemmActivation act) {
  apply_epilogue(c, ldc, m, n, bias, per_row, act);
}

}  // namespace

// A 4 x 16 (float) or 4 x 8 (double) tile: 64 or 32 accumulators, which compilers keep in
// vector registers on any 128-bit SIMD ISA. Blocks sized for a 32 KiB L1 and 256 KiB L2.
const MicroKernel<float>& generic_kernel_f32() {
  static const MicroKernel<float> k{
      {4, 16, 128, 256, 2048}, tile<float, 4, 16>, epilogue<float>, pack_a<float>, pack_b<float>};
  return k;
}

const MicroKernel<double>& generic_kernel_f64() {
  static const MicroKernel<double> k{
      {4, 8, 64, 256, 1024}, tile<double, 4, 8>, epilogue<double>, pack_a<double>, pack_b<double>};
  return k;
}

}  // namespace shallow::cpu::gemm_detail
