#pragma once
// The tensor-core pieces shared by the bf16 attention kernels (attention_mma.cu,
// attention_mma_backward.cu): mma.sync.m16n8k16 with bf16 operands and f32 accumulators, as
// inline PTX, and the fragment loads from shared memory.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 with 16-bit operands), with g = lane / 4 and
// t = lane % 4; each operand register holds two neighbouring 16-bit elements, the lower index
// in the low half:
//   A 16x16: a0 (row g, cols 2t..2t+1), a1 (row g+8, cols 2t..), a2 (row g, cols 2t+8..),
//            a3 (row g+8, cols 2t+8..)
//   B 16x8:  b0 (rows 2t..2t+1, col g), b1 (rows 2t+8.., col g)
//   C 16x8:  c0, c1 (row g, cols 2t, 2t+1), c2, c3 (row g+8, cols 2t, 2t+1)
// So the accumulators of two neighbouring 16 x 8 blocks (columns 0..7 and 8..15), rounded to
// bf16 and packed in pairs, are the A operand of one 16 x 16 block: a product's result feeds
// the next product from registers. A B operand's pairs run down a column of B: they are
// neighbours in shared memory when B is stored transposed (row n of the tile holds column n).
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/attention_common.cuh"

namespace shallow::cuda::attention_detail {

constexpr int kMmaThreads = 128;  // 4 warps of 16 rows: 64 rows per block

// Two neighbouring 16-bit elements of a shared-memory row (col even, so 4-byte aligned).
__device__ inline uint32_t pair_at(const uint16_t* tile, int ld, int row, int col) {
  return *reinterpret_cast<const uint32_t*>(tile + row * ld + col);
}

__device__ inline uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low half
  return *reinterpret_cast<const uint32_t*>(&v);
}

// The A operand of rows [row0, row0 + 16) and columns [col0, col0 + 16) of a row-major tile.
__device__ inline void load_a(uint32_t (&a)[4], const uint16_t* tile, int ld, int row0, int col0) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  a[0] = pair_at(tile, ld, row0 + g, col0 + 2 * t);
  a[1] = pair_at(tile, ld, row0 + g + 8, col0 + 2 * t);
  a[2] = pair_at(tile, ld, row0 + g, col0 + 2 * t + 8);
  a[3] = pair_at(tile, ld, row0 + g + 8, col0 + 2 * t + 8);
}

// The A operand made from accumulators: blocks n0 and n0 + 1 of c (each 16 x 8).
__device__ inline void a_from_c(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = pack_bf16(c0[0], c0[1]);
  a[1] = pack_bf16(c0[2], c0[3]);
  a[2] = pack_bf16(c1[0], c1[1]);
  a[3] = pack_bf16(c1[2], c1[3]);
}

// c += a b with the B operand already in registers (b0, b1 as described above).
__device__ inline void mma_bf16_regs(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                     uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

// c += a b, where b is the 16 x 8 block whose column n is row (n0 + n) of a tile stored
// transposed (`bt`, row-major), over its columns [k0, k0 + 16).
__device__ inline void mma_bf16(float (&c)[4], const uint32_t (&a)[4], const uint16_t* bt, int ld,
                                int n0, int k0) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  mma_bf16_regs(c, a, pair_at(bt, ld, n0 + g, k0 + 2 * t), pair_at(bt, ld, n0 + g, k0 + 2 * t + 8));
}

// Four 8 x 8 blocks of 16-bit elements from shared memory (ldmatrix .x4): lanes 8m .. 8m + 7
// give the row addresses (16-byte aligned) of block m, and r[m] receives the block's fragment:
// lane holds row lane / 4, columns 2 (lane % 4) and the next; with `.trans`, column lane / 4,
// rows 2 (lane % 4) and the next.
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const uint16_t* row_address) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(row_address));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
#else
  __trap();
#endif
}

__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], const uint16_t* row_address) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(row_address));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
#else
  __trap();
#endif
}

// An asynchronous 16-byte copy from global to shared memory (both 16-byte aligned); with
// `fill` false nothing is read and the 16 bytes are zeroed (src-size 0).
__device__ inline void cp_async_16(void* shared_dst, const void* global_src, bool fill) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(shared_dst));
  const int src_bytes = fill ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(global_src),
               "r"(src_bytes)
               : "memory");
#else
  __trap();
#endif
}

__device__ inline void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ inline void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// Issues the 16-byte copies (cp.async) of rows [row0, row0 + rows) of batch entry b into dst
// (row-major, ld), columns [0, D); rows at or past L are zero-filled. Columns [D, DP) are not
// touched. Every thread of the block takes part; the operand must be Source::vec.
__device__ inline void copy_rows_async(uint16_t* dst, int ld, int rows,
                                       const Source<cpu::bf16>& src, int64_t b, int64_t row0,
                                       int64_t L, int D) {
  constexpr int kChunk = 8;  // bf16 elements per 16-byte copy
  const cpu::bf16* base = src.data + src.layout.offset(b);
  const int chunks = D / kChunk;
  for (int idx = threadIdx.x; idx < rows * chunks; idx += blockDim.x) {
    const int r = idx / chunks, c0 = (idx % chunks) * kChunk;
    const int64_t row = row0 + r;
    const bool inside = row < L;
    // A row past L reads nothing; its address is row 0's, which exists (L > 0 here).
    const cpu::bf16* from = base + (inside ? row * src.ld : 0) + c0;
    cp_async_16(dst + r * ld + c0, from, inside);
  }
}

// The padded columns [D, DP) of `rows` consecutive shared rows of LD elements are zeros
// (cp.async writes only [0, D)); visible to the block after its next barrier.
template <int DP, int LD>
__device__ inline void zero_padding(uint16_t* first_row, int rows, int D) {
  const int pad = DP - D;
  if (pad <= 0) return;
  for (int idx = threadIdx.x; idx < rows * pad; idx += blockDim.x)
    first_row[(idx / pad) * LD + D + idx % pad] = 0;
}

}  // namespace shallow::cuda::attention_detail
