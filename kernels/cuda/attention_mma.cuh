#pragma once
// The tensor-core pieces shared by the bf16 attention kernels (attention_mma*.cu):
// mma.sync.m16n8k16 with bf16 operands and f32 accumulators, as inline PTX, and the fragment
// loads from shared memory; and those every pipelined kernel uses, f32 ones included
// (attention_tf32*.cu): cp.async copies of rows, the walk over double-buffered tiles, the
// online softmax's step.
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
// (row-major, ld elements), columns [0, D); rows at or past L are zero-filled. Columns [D, DP)
// are not touched. Every thread of the block takes part; the operand must be Source::vec. S is
// the shared element type (the raw bits of a bf16, or float), T the operand's.
template <class S, class T>
__device__ inline void copy_rows_async(S* dst, int ld, int rows, const Source<T>& src, int64_t b,
                                       int64_t row0, int64_t L, int D) {
  static_assert(sizeof(S) == sizeof(T), "shared elements hold the operand's bits");
  constexpr int kChunk = 16 / int(sizeof(T));  // elements per 16-byte copy
  const T* base = src.data + src.layout.offset(b);
  const int chunks = D / kChunk;
  for (int idx = threadIdx.x; idx < rows * chunks; idx += blockDim.x) {
    const int r = idx / chunks, c0 = (idx % chunks) * kChunk;
    const int64_t row = row0 + r;
    const bool inside = row < L;
    // A row past L reads nothing; its address is row 0's, which exists (L > 0 here).
    const T* from = base + (inside ? row * src.ld : 0) + c0;
    cp_async_16(dst + r * ld + c0, from, inside);
  }
}

// The padded columns [D, DP) of `rows` consecutive shared rows of LD elements are zeros
// (cp.async writes only [0, D)); visible to the block after its next barrier.
template <int DP, int LD, class S>
__device__ inline void zero_padding(S* first_row, int rows, int D) {
  const int pad = DP - D;
  if (pad <= 0) return;
  for (int idx = threadIdx.x; idx < rows * pad; idx += blockDim.x)
    first_row[(idx / pad) * LD + D + idx % pad] = S(0);
}

// Walks the tiles [begin, end) (steps of `step` rows) of two operands of batch entry b (K and V,
// or Q and dO) through two shared buffers each (As, Bs: [2][step][ld]): the copy of tile i + 1
// is in flight while body(i0, buf, has_next) computes tile i from buffer buf. Copies the caller
// issued before (a block's own rows) land with the first tile: they and its copies are one
// group. Between the barriers around body every thread's copies of tile i are visible, and
// after the second no warp still reads buffer buf; after the walk every copy has landed.
template <class S, class T, class Body>
__device__ inline void walk_tiles(S* As, S* Bs, int ld, int step, const Source<T>& a,
                                  const Source<T>& bs, int64_t b, int64_t begin, int64_t end,
                                  int64_t L, int D, Body&& body) {
  const int tile = step * ld;
  if (begin < end) {
    copy_rows_async(As, ld, step, a, b, begin, L, D);
    copy_rows_async(Bs, ld, step, bs, b, begin, L, D);
  }
  cp_async_commit();
  int buf = 0;
  for (int64_t i0 = begin; i0 < end; i0 += step, buf ^= 1) {
    const bool has_next = i0 + step < end;
    if (has_next) {  // the other buffers were released by the barrier at the end of the last tile
      copy_rows_async(As + (buf ^ 1) * tile, ld, step, a, b, i0 + step, L, D);
      copy_rows_async(Bs + (buf ^ 1) * tile, ld, step, bs, b, i0 + step, L, D);
      cp_async_commit();
      cp_async_wait<1>();  // all but the group just issued: tile i (and the earlier copies)
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // every thread's copies of tile i (and zeroed padding) are visible
    body(i0, buf, has_next);
    __syncthreads();  // every warp is done with buffer buf before the next copy into it
  }
  cp_async_wait<0>();  // with no tile, the caller's copies are still owed
}

// One tile's step of the online softmax for the row whose scaled scores (base 2) this thread
// and the other three of its quad hold: mx, this thread's maximum over them in the tile,
// becomes the quad's; the running maximum m and this thread's part of the running sum l are
// updated; alpha (to rescale l and the output) and the maximum to subtract from the scores
// (0 while the row has attended nothing: no inf - inf) are returned.
__device__ inline void online_softmax_step(float mx, float& m, float& l, float& alpha,
                                           float& m_use) {
  const float inf = __int_as_float(0x7f800000);
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  const float m_new = fmaxf(m, mx);
  m_use = m_new == -inf ? 0.f : m_new;
  alpha = exp2f(m - m_use);
  m = m_new;
  l *= alpha;
}

}  // namespace shallow::cuda::attention_detail
