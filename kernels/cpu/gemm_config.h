#pragma once
// Which micro-kernel the gemm runs (chosen at run time from the CPU's features) and the block
// sizes that go with it, exposed so that tests can aim at every edge of the blocking.
#include <cstdint>

namespace shallow::cpu {

enum class GemmIsa { generic, avx2, avx512 };

const char* gemm_isa_name(GemmIsa isa);

// Register tile (mr x nr) and cache blocks (mc x kc of A, kc x nc of B) of one kernel.
struct GemmBlocking {
  int64_t mr, nr, mc, kc, nc;
};

// float kernels, per ISA; double always runs the generic kernel.
GemmBlocking gemm_blocking_f32(GemmIsa isa);
GemmBlocking gemm_blocking_f64();

// Up to this many rows of C, op(A) op(B) with op(B) = B^T (a linear layer's x W^T at batch 1)
// runs without packing B where the kernel has such a path (AVX-512): packing B, the weight,
// costs about as much as a product with that few rows. Measured on Zen 4, 2 threads, weights
// cycled through memory: up to 40 rows the unpacked path leads (16 rows: 136 against 65
// GFLOP/s, 40: 145 against 110); at 50 rows (ViT-B/32 at batch 1) the packed one, since it
// prefetches the next panel while it computes and ends on the 8-row tile (x W^T 50 x 2304 x 768:
// 161-163 against 142-148; the whole ViT-B/32 forward at batch 1, best of 4 interleaved runs,
// 12.6 -> 17.2 images/s). The unpacked path was measured at up to 64 rows before those changes.
constexpr int64_t gemm_unpacked_max_rows() { return 48; }

// Whether this CPU (and the build) can run the kernel.
bool gemm_isa_supported(GemmIsa isa);
// The float kernel in use: the forced one, else the best one supported.
GemmIsa gemm_isa();
// Forces a kernel (throws std::invalid_argument when unsupported); reset_gemm_isa() undoes it.
// Not meant to be switched while gemms run on other threads.
void set_gemm_isa_for_testing(GemmIsa isa);
void reset_gemm_isa();

}  // namespace shallow::cpu
