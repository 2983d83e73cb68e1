#pragma once
// General matrix multiply on row-major matrices:
//   C[M,N] = alpha * op(A) * op(B) + beta * C,  op(X) = X or X^T.
// lda/ldb/ldc are row strides in elements (the stride of the column index is 1).
// beta == 0 overwrites C without reading it (NaN in C does not leak through), as BLAS does.
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

// What is applied to each element of C once its sum is complete, while the tile is still in
// cache: C = act(alpha * op(A) op(B) + beta * C + bias).
enum class GemmActivation {
  none,
  relu,
  gelu,        // x * Phi(x), the erf form
  gelu_tanh,   // the tanh approximation
  quick_gelu,  // x * sigmoid(1.702 x)
};

template <class T>
struct GemmEpilogue {
  const T* bias = nullptr;    // none when null
  bool bias_per_row = false;  // false: bias[N], one per column; true: bias[M], one per row
  GemmActivation act = GemmActivation::none;

  bool active() const { return bias != nullptr || act != GemmActivation::none; }
};

template <class T>
void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
             int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
             const GemmEpilogue<T>& epilogue);

}  // namespace shallow::cpu
