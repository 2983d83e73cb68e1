#pragma once
// Internal interface between the gemm driver and its micro-kernels (one file per ISA).
#include <cstdint>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_config.h"
#include "kernels/cpu/prefetch_region.h"

namespace shallow::cpu::gemm_detail {

template <class T>
struct MicroKernel {
  GemmBlocking blocking;
  // C[mr x nr] = alpha * Apanel * Bpanel + beta * C, over kc steps of the packed panels
  // (a: kc x mr, b: kc x nr, both contiguous). beta == 0 does not read C.
  void (*tile)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta);
  // Bias and activation over an m x n piece of C; bias already points at its first element.
  void (*epilogue)(T* c, int64_t ldc, int64_t m, int64_t n, const T* bias, bool bias_per_row,
                   GemmActivation act);
  // Packing as pack_a / pack_b below do it, or a faster way of the kernel's own ISA.
  void (*pack_a)(bool trans_a, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
                 int64_t kc, int64_t mr, T* dst);
  void (*pack_b)(bool trans_b, const T* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                 int64_t nc, int64_t nr, T* dst);
  // Optional (null where the ISA has none): columns [j0, j1) of C = alpha * A B^T + beta * C
  // for all M rows, for products with few rows: B is read in place, A comes packed as
  // pack_b(true, A, ...) packs it with nr = nt_unpacked_lanes over all K (one panel per
  // nt_unpacked_lanes rows of A, zero past M).
  void (*nt_unpacked)(int64_t M, int64_t j0, int64_t j1, int64_t K, T alpha, const T* A_packed,
                      const T* B, int64_t ldb, T beta, T* C, int64_t ldc) = nullptr;
  int64_t nt_unpacked_lanes = 0;
  // Optional: a tile of short_mr < blocking.mr rows over the same panels of B (A packed with
  // short_mr lanes), for row counts the full tile would overhang by much: the implicit-GEMM
  // convolution where that pays over all rows, the gemm driver for C's last rows where they fit.
  void (*short_tile)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha,
                     T beta) = nullptr;
  int64_t short_mr = 0;
  // Optional: `tile` that also prefetches a region (prefetch_region.h), one line per k step.
  void (*tile_prefetching)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta,
                           const PrefetchRegion& region) = nullptr;
};

const MicroKernel<float>& avx512_kernel_f32();
// gemm_small_m_avx512.cpp, in AVX-512 builds: the avx512 kernel's nt_unpacked.
void gemm_nt_unpacked_avx512(int64_t M, int64_t j0, int64_t j1, int64_t K, float alpha,
                             const float* A_packed, const float* B, int64_t ldb, float beta,
                             float* C, int64_t ldc);
const MicroKernel<float>& avx2_kernel_f32();
const MicroKernel<float>& generic_kernel_f32();
const MicroKernel<double>& generic_kernel_f64();

// The kernel the drivers run (gemm_dispatch.cpp): for float the one gemm_isa() names, for
// double the generic one.
template <class T>
const MicroKernel<T>& active_kernel();

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }


// The threads of a driver form a grid: tm groups split the rows of C, tn groups its columns.
// choose_grid picks the grid whose busiest thread has the fewest register tiles; on a tie, more
// row groups, since those share the packed B and do not pack A twice.
struct Grid {
  int tm = 1, tn = 1;
};
Grid choose_grid(int threads, int64_t m_tiles, int64_t n_tiles);

// Packing (gemm_pack.cpp): op(A)[i0:i0+mc, k0:k0+kc] into ceil(mc/mr) panels of kc x mr, and
// op(B)[k0:k0+kc, j0:j0+nc] into ceil(nc/nr) panels of kc x nr; rows/columns past the matrix
// are zero so that the kernels always run full tiles.
template <class T>
void pack_a(bool trans_a, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
            int64_t mr, T* dst);
template <class T>
void pack_b(bool trans_b, const T* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
            int64_t nr, T* dst);

}  // namespace shallow::cpu::gemm_detail
