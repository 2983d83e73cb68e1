#pragma once
// General matrix multiply on row-major matrices:
//   C[M,N] = alpha * op(A) * op(B) + beta * C,  op(X) = X or X^T.
// lda/ldb/ldc are row strides in elements (the stride of the column index is 1).
#include <cstdint>

namespace shallow::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// `batch` independent gemms whose matrices start stride_a/stride_b/stride_c elements apart
// (a stride of 0 reuses the same matrix: broadcasting).
template <class T>
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  T alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                  int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c);

}  // namespace shallow::cpu
