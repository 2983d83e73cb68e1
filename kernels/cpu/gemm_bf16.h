#pragma once
// Matrix multiply of bfloat16 matrices with f32 accumulation:
//   C[M,N] = op(A)[M,K] * op(B)[K,N] (+ bias[N]),  op(X) = X or X^T,
// A and B bf16 and row-major (lda/ldb are row strides in elements), C f32 or bf16 (the f32 sum
// plus bias, rounded once to nearest even). C is overwritten.
//
// How: B is packed into panels of kGemmBf16NR columns whose rows are k-pairs, the two bf16 of
// a pair side by side in one 32-bit word (the layout of vdpbf16ps, which multiplies such pairs
// and adds both products into an f32 lane); A is packed the same way by rows, one pair
// broadcast per row. On CPUs with AVX512_BF16 a register-blocked micro-kernel runs on
// vdpbf16ps; elsewhere a scalar micro-kernel reads the same packed panels and gives the same
// values up to the order of the f32 additions.
#include <cstdint>
#include <memory>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/half.h"

namespace shallow::cpu {

// The micro-kernel's tile of C: rows of A and columns of B per call.
constexpr int64_t kGemmBf16MR = 12;
constexpr int64_t kGemmBf16NR = 32;

enum class GemmBf16Path {
  automatic,    // AVX512_BF16 when the CPU (and the build) has it, else scalar
  avx512_bf16,  // vdpbf16ps; only where gemm_bf16_avx512_available()
  scalar,       // the portable micro-kernel
};

// Whether this build includes the AVX512_BF16 kernel and the CPU running it supports it.
bool gemm_bf16_avx512_available();
// Forces a path for every later call (tests and benchmarks); throws std::invalid_argument for
// avx512_bf16 where it is not available.
void set_gemm_bf16_path(GemmBf16Path path);
// The path calls take now (never `automatic`).
GemmBf16Path gemm_bf16_path();
const char* gemm_bf16_path_name(GemmBf16Path path);

// op(B) [K, N] packed once, for products that reuse it (an inference model's weights).
class PackedBf16B {
 public:
  PackedBf16B() = default;
  PackedBf16B(bool trans_b, int64_t K, int64_t N, const bf16* B, int64_t ldb);
  int64_t K() const { return K_; }
  int64_t N() const { return N_; }
  // Panel p (columns p*NR ..): ceil(K/2) rows of NR words, zero-padded past K and N.
  const uint32_t* panel(int64_t p) const { return data_.get() + p * pairs() * kGemmBf16NR; }
  int64_t pairs() const { return (K_ + 1) / 2; }
  int64_t panels() const { return (N_ + kGemmBf16NR - 1) / kGemmBf16NR; }

 private:
  int64_t K_ = 0, N_ = 0;
  std::unique_ptr<uint32_t[]> data_;  // every word written by the packing: not zeroed first
};

// C = act(op(A) * B_packed (+ bias)); bias may be null. TC is float or bf16. The activation is
// applied to the f32 sum, before the one rounding to TC (gemm.h's GemmActivation, computed as
// the f32 GEMM's epilogue computes it).
template <class TC>
void gemm_bf16_packed(bool trans_a, int64_t M, const bf16* A, int64_t lda, const PackedBf16B& B,
                      const float* bias, TC* C, int64_t ldc,
                      GemmActivation act = GemmActivation::none);

// C = act(op(A) * op(B) (+ bias)), packing B for this call.
template <class TC>
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const bf16* A,
               int64_t lda, const bf16* B, int64_t ldb, const float* bias, TC* C, int64_t ldc,
               GemmActivation act = GemmActivation::none);

// `batch` independent products whose matrices start stride_a/stride_b/stride_c elements apart
// (a stride of 0 reuses one matrix: broadcasting; B is then packed once).
template <class TC>
void gemm_bf16_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       const bf16* A, int64_t lda, int64_t stride_a, const bf16* B, int64_t ldb,
                       int64_t stride_b, const float* bias, TC* C, int64_t ldc, int64_t stride_c,
                       GemmActivation act = GemmActivation::none);

}  // namespace shallow::cpu
