#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {

// Cache blocks: a KC x NC panel of B stays in L2 while rows of A stream through it.
constexpr int64_t KC = 256;
constexpr int64_t NC = 512;
constexpr int64_t MR = 4;  // rows of C updated together, reusing each loaded B row

// Packs op(B)[k0:k0+kc, n0:n0+nc] into a contiguous row-major kc x nc panel.
template <class T>
void pack_b(bool trans_b, const T* B, int64_t ldb, int64_t k0, int64_t kc, int64_t n0,
            int64_t nc, T* panel) {
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t j = 0; j < nc; ++j)
      panel[k * nc + j] = trans_b ? B[(n0 + j) * ldb + (k0 + k)] : B[(k0 + k) * ldb + (n0 + j)];
}

template <class T>
inline T a_at(bool trans_a, const T* A, int64_t lda, int64_t i, int64_t k) {
  return trans_a ? A[k * lda + i] : A[i * lda + k];
}

// C[m0:m1, n0:n0+nc] += alpha * op(A)[m0:m1, k0:k0+kc] * panel.
template <class T>
void block(bool trans_a, const T* A, int64_t lda, const T* panel, int64_t k0, int64_t kc,
           int64_t n0, int64_t nc, int64_t m0, int64_t m1, T alpha, T* C, int64_t ldc) {
  int64_t i = m0;
  for (; i + MR <= m1; i += MR) {
    T* c0 = C + (i + 0) * ldc + n0;
    T* c1 = C + (i + 1) * ldc + n0;
    T* c2 = C + (i + 2) * ldc + n0;
    T* c3 = C + (i + 3) * ldc + n0;
    for (int64_t k = 0; k < kc; ++k) {
      const T a0 = alpha * a_at(trans_a, A, lda, i + 0, k0 + k);
      const T a1 = alpha * a_at(trans_a, A, lda, i + 1, k0 + k);
      const T a2 = alpha * a_at(trans_a, A, lda, i + 2, k0 + k);
      const T a3 = alpha * a_at(trans_a, A, lda, i + 3, k0 + k);
      const T* b = panel + k * nc;
      for (int64_t j = 0; j < nc; ++j) {
        const T bj = b[j];
        c0[j] += a0 * bj;
        c1[j] += a1 * bj;
        c2[j] += a2 * bj;
        c3[j] += a3 * bj;
      }
    }
  }
  for (; i < m1; ++i) {
    T* c = C + i * ldc + n0;
    for (int64_t k = 0; k < kc; ++k) {
      const T a = alpha * a_at(trans_a, A, lda, i, k0 + k);
      const T* b = panel + k * nc;
      for (int64_t j = 0; j < nc; ++j) c[j] += a * b[j];
    }
  }
}

template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) std::fill(c, c + N, T(0));  // beta 0 ignores NaN in C, as BLAS does
    else if (beta != T(1)) for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// One gemm on the calling thread, restricted to rows [m0, m1) of C.
template <class T>
void gemm_rows(bool trans_a, bool trans_b, int64_t m0, int64_t m1, int64_t N, int64_t K,
               T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc,
               std::vector<T>& panel) {
  for (int64_t n0 = 0; n0 < N; n0 += NC) {
    const int64_t nc = std::min(NC, N - n0);
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = std::min(KC, K - k0);
      panel.resize(size_t(kc * nc));
      pack_b(trans_b, B, ldb, k0, kc, n0, nc, panel.data());
      block(trans_a, A, lda, panel.data(), k0, kc, n0, nc, m0, m1, alpha, C, ldc);
    }
  }
}

}  // namespace

template <class T>
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  T alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                  int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  // Threads split the batch when there are enough matrices, otherwise the rows of each.
  const int64_t flops_per_row = std::max<int64_t>(1, N * K);
  if (batch >= num_threads()) {
    parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
      std::vector<T> panel;
      for (int64_t b = b0; b < b1; ++b) {
        T* c = C + b * stride_c;
        scale_c(M, N, beta, c, ldc);
        if (K > 0)
          gemm_rows(trans_a, trans_b, 0, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b,
                    ldb, c, ldc, panel);
      }
    });
    return;
  }
  for (int64_t b = 0; b < batch; ++b) {
    T* c = C + b * stride_c;
    const T* a = A + b * stride_a;
    const T* bb = B + b * stride_b;
    parallel_for(0, M, std::max<int64_t>(MR, 65536 / flops_per_row), [&](int64_t m0, int64_t m1) {
      std::vector<T> panel;
      scale_c(m1 - m0, N, beta, c + m0 * ldc, ldc);
      if (K > 0) gemm_rows(trans_a, trans_b, m0, m1, N, K, alpha, a, lda, bb, ldb, c, ldc, panel);
    });
  }
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_batched<T>(1, trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0);
}

#define SH_INSTANTIATE(T)                                                                     \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t);                                             \
  template void gemm_batched<T>(int64_t, bool, bool, int64_t, int64_t, int64_t, T, const T*,  \
                                int64_t, int64_t, const T*, int64_t, int64_t, T, T*, int64_t,  \
                                int64_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cpu
