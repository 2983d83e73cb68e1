#pragma once
// The TF32 tensor-core pieces shared by the f32 attention kernels (attention_tf32.cu forward,
// attention_tf32_backward.cu): each product taken as three TF32 products ("3xTF32"). A value
// x is split into hi = x rounded to TF32 (10-bit mantissa) and lo = the rest rounded to TF32,
// and a b = a_hi b_hi + a_hi b_lo + a_lo b_hi (the lo lo term, 2^-22 of the product, is
// dropped): each product within a few 2^-22 of the f32 one, where one TF32 product alone would
// be 2^-11 off, at three tensor-core products per FMA product, still several times the GPU's
// f32 FMA rate. Accumulators are f32.
//
// mma.m16n8k8 with TF32 operands (PTX ISA; g = lane / 4, t = lane % 4; 32-bit elements):
//   A 16x8: a0 (row g, col t), a1 (row g+8, col t), a2 (row g, col t+4), a3 (row g+8, col t+4)
//   B 8x8:  b0 (row t, col g), b1 (row t+4, col g)
//   C 16x8: c0, c1 (row g, cols 2t, 2t+1), c2, c3 (row g+8, cols 2t, 2t+1)
// Products whose A operand is an earlier product's C (P V, P^T dO, dS^T Q, dS K) need no moves
// between lanes: A's slot t is taken to mean C's column 2t and slot t + 4 column 2t + 1, and the
// B operand's rows t and t + 4 are read from the rows of the tile that those columns stand for.
// The sum over the 8 columns is the same in either order.
//
// Shared tiles are row-major f32 with rows DP + 4 floats apart (36 or 68): the 32 lanes of
// every fragment read (rows g or 2t, columns t or g) then fall in 32 different banks.
#include <cstdint>

#include "kernels/cuda/attention_mma.cuh"

namespace shallow::cuda::attention_detail {

// x rounded to TF32 (to nearest, ties away from zero), as the 32-bit pattern mma takes.
__device__ inline uint32_t to_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
#else
  __trap();
  return 0;
#endif
}

struct Split {
  uint32_t hi, lo;
};

// x = hi + lo (+ a remainder of about 2^-22 of x): hi is x in TF32, lo the rest in TF32.
__device__ inline Split split(float x) {
  const uint32_t hi = to_tf32(x);
  return {hi, to_tf32(x - __uint_as_float(hi))};
}

// c += a b for one TF32 m16n8k8 product.
__device__ inline void mma_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

// A 16 x 8 A operand, split.
struct SplitA {
  uint32_t hi[4], lo[4];
};

// c += a b in three TF32 products, the two small ones first.
__device__ inline void mma_3xtf32(float (&c)[4], const SplitA& a, Split b0, Split b1) {
  mma_tf32(c, a.lo, b0.hi, b1.hi);
  mma_tf32(c, a.hi, b0.lo, b1.lo);
  mma_tf32(c, a.hi, b0.hi, b1.hi);
}

// Rows [row0, row0 + 16) and columns [col0, col0 + 8) of a row-major shared tile, as a split
// A operand.
__device__ inline SplitA load_a_split(const float* tile, int ld, int row0, int col0) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const float* r0 = tile + (row0 + g) * ld + col0 + t;
  const float* r1 = r0 + 8 * ld;
  const Split a0 = split(r0[0]), a1 = split(r1[0]), a2 = split(r0[4]), a3 = split(r1[4]);
  return {{a0.hi, a1.hi, a2.hi, a3.hi}, {a0.lo, a1.lo, a2.lo, a3.lo}};
}

// The A operand made from accumulator block c (16 x 8, C layout), split: slot t is column 2t,
// slot t + 4 column 2t + 1.
__device__ inline SplitA a_from_c_split(const float (&c)[4]) {
  const Split e0 = split(c[0]), e1 = split(c[2]), e2 = split(c[1]), e3 = split(c[3]);
  return {{e0.hi, e1.hi, e2.hi, e3.hi}, {e0.lo, e1.lo, e2.lo, e3.lo}};
}

// acc[n] += A R_n^T over DP columns, where R_n is rows [8n, 8n + 8) of `rows` (a shared tile
// of LD floats per row) and A is 16 rows given by a(kk), the split A operand of columns
// [8 kk, 8 kk + 8): S = Q K^T, dP = dO V^T, S^T = K Q^T, dP^T = V dO^T. Only the first `live`
// blocks n are multiplied (the rest of acc is left as it is).
template <int DP, int LD, int NB, class AOf>
__device__ inline void product_with_rows(float (&acc)[NB][4], AOf&& a, const float* rows,
                                         int live = NB) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int kk = 0; kk < DP / 8; ++kk) {
    const SplitA& ak = a(kk);
#pragma unroll
    for (int n = 0; n < NB; ++n) {
      if (n >= live) continue;
      const float* r = rows + (n * 8 + g) * LD + kk * 8 + t;
      mma_3xtf32(acc[n], ak, split(r[0]), split(r[4]));
    }
  }
}

// out[d] += C T, where C (16 x 8 NB accumulators) multiplies rows [0, 8 NB) of `tile` (rows of
// LD floats, DP columns): O += P V, dV += P^T dO, dK += dS^T Q, dQ += dS K. Only the first `live`
// 8-row blocks are taken (C is zero past them).
template <int DP, int LD, int NB>
__device__ inline void product_into(float (&out)[DP / 8][4], const float (&c)[NB][4],
                                    const float* tile, int live = NB) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int n = 0; n < NB; ++n) {
    if (n >= live) continue;
    const SplitA a = a_from_c_split(c[n]);
    const float* r = tile + (n * 8 + 2 * t) * LD + g;  // rows 2t and 2t + 1 of block n
#pragma unroll
    for (int d = 0; d < DP / 8; ++d) mma_3xtf32(out[d], a, split(r[d * 8]), split(r[d * 8 + LD]));
  }
}

// Stores rows g and g + 8 (h = 0, 1) of a warp's 16 x DP accumulators times `scale` as float
// pairs into rows row[h] (skipped at or past `rows`) of a contiguous [rows, D] matrix.
template <int DP>
__device__ inline void store_pairs(const float (&acc)[DP / 8][4], const int64_t (&row)[2],
                                   int64_t rows, int D, float scale, float* __restrict__ dst) {
  const int t = threadIdx.x & 3;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (row[h] >= rows) continue;
    float* out_row = dst + row[h] * D;
#pragma unroll
    for (int d = 0; d < DP / 8; ++d) {
      const int col = d * 8 + 2 * t;  // even, and D is a multiple of 4: col + 1 < D with col
      if (col < D)
        *reinterpret_cast<float2*>(out_row + col) =
            make_float2(acc[d][2 * h] * scale, acc[d][2 * h + 1] * scale);
    }
  }
}

}  // namespace shallow::cuda::attention_detail
