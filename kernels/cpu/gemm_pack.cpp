// Packing for the gemm: copies a block of op(A) or op(B) into the order the micro-kernel reads
// it (one contiguous panel per register tile, k-major), so that transposed operands and any
// leading dimension cost nothing in the kernel itself. Widths the kernels use are compiled as
// constants, which lets the compiler unroll and vectorize the copies.
#include <algorithm>

#include "kernels/cpu/gemm_kernels.h"

namespace shallow::cpu::gemm_detail {
namespace {

// One panel of `width` lanes: dst[k * width + l] = src(l, k) for l < valid, 0 beyond.
// `lane_major`: lane l's k-run is contiguous at src + l * ld (a gather across lanes);
// otherwise step k's lanes are contiguous at src + k * ld (a straight copy per k).
template <class T, int W>
void pack_panel(bool lane_major, const T* src, int64_t ld, int64_t kc, int64_t valid, T* dst) {
  if (lane_major) {
    if (valid < W)
      for (int64_t k = 0; k < kc; ++k) std::fill(dst + k * W + valid, dst + k * W + W, T(0));
    for (int64_t l = 0; l < valid; ++l) {
      const T* s = src + l * ld;
      for (int64_t k = 0; k < kc; ++k) dst[k * W + l] = s[k];
    }
  } else if (valid == W) {
    for (int64_t k = 0; k < kc; ++k) {
      const T* s = src + k * ld;
      T* d = dst + k * W;
      for (int l = 0; l < W; ++l) d[l] = s[l];
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const T* s = src + k * ld;
      T* d = dst + k * W;
      for (int64_t l = 0; l < valid; ++l) d[l] = s[l];
      for (int64_t l = valid; l < W; ++l) d[l] = T(0);
    }
  }
}

template <class T>
void pack_panel_any(bool lane_major, const T* src, int64_t ld, int64_t kc, int64_t valid,
                    int64_t width, T* dst) {
  switch (width) {
    case 4:
      return pack_panel<T, 4>(lane_major, src, ld, kc, valid, dst);
    case 6:
      return pack_panel<T, 6>(lane_major, src, ld, kc, valid, dst);
    case 8:
      return pack_panel<T, 8>(lane_major, src, ld, kc, valid, dst);
    case 12:
      return pack_panel<T, 12>(lane_major, src, ld, kc, valid, dst);
    case 16:
      return pack_panel<T, 16>(lane_major, src, ld, kc, valid, dst);
    case 32:
      return pack_panel<T, 32>(lane_major, src, ld, kc, valid, dst);
    default:
      break;
  }
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t l = 0; l < width; ++l)
      dst[k * width + l] = l < valid ? (lane_major ? src[l * ld + k] : src[k * ld + l]) : T(0);
}

}  // namespace

template <class T>
void pack_a(bool trans_a, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
            int64_t mr, T* dst) {
  for (int64_t p = 0; p * mr < mc; ++p) {
    const int64_t r0 = i0 + p * mr, valid = std::min(mr, mc - p * mr);
    // A row-major: row r's k-run is contiguous; A^T stored: step k's rows are contiguous.
    const T* src = trans_a ? A + k0 * lda + r0 : A + r0 * lda + k0;
    pack_panel_any(!trans_a, src, lda, kc, valid, mr, dst + p * mr * kc);
  }
}

template <class T>
void pack_b(bool trans_b, const T* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
            int64_t nr, T* dst) {
  for (int64_t p = 0; p * nr < nc; ++p) {
    const int64_t c0 = j0 + p * nr, valid = std::min(nr, nc - p * nr);
    const T* src = trans_b ? B + c0 * ldb + k0 : B + k0 * ldb + c0;
    pack_panel_any(trans_b, src, ldb, kc, valid, nr, dst + p * nr * kc);
  }
}

template void pack_a<float>(bool, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                            int64_t, float*);
template void pack_a<double>(bool, const double*, int64_t, int64_t, int64_t, int64_t, int64_t,
                             int64_t, double*);
template void pack_b<float>(bool, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                            int64_t, float*);
template void pack_b<double>(bool, const double*, int64_t, int64_t, int64_t, int64_t, int64_t,
                             int64_t, double*);

}  // namespace shallow::cpu::gemm_detail
