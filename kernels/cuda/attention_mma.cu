// Fused attention forward for bf16 on tensor cores: mma.sync.m16n8k16 (bf16 operands, f32
// accumulators), written as inline PTX.
//
// A block of 4 warps takes 64 query rows, a warp 16 of them. The head dim is padded with zeros
// to DP (32, 64 or 128: the products see zeros, the padded columns are never stored). Per tile
// of 64 keys:
//   S (16 x 64 per warp) = Q K^T: Q and K rows from shared memory, 8 column blocks of 8 keys;
//   the online softmax on S in registers (each row's 64 scores sit in the 4 threads of a quad);
//   O (16 x DP) += P V, where P, rounded to bf16, is fed from the registers S was produced in:
//   the accumulator layout of two neighbouring 16 x 8 blocks is the operand layout of one
//   16 x 16 block. V is stored transposed in shared memory so that its operand fragments are
//   pairs of neighbouring keys.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 with 16-bit operands), with g = lane / 4 and
// t = lane % 4; each register holds two neighbouring 16-bit elements, the lower index in the
// low half:
//   A 16x16: a0 (row g, cols 2t..2t+1), a1 (row g+8, cols 2t..), a2 (row g, cols 2t+8..),
//            a3 (row g+8, cols 2t+8..)
//   B 16x8:  b0 (rows 2t..2t+1, col g), b1 (rows 2t+8.., col g)
//   C 16x8:  c0, c1 (row g, cols 2t, 2t+1), c2, c3 (row g+8, cols 2t, 2t+1)
#include <cuda_bf16.h>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"

namespace shallow::cuda::attention_detail {
namespace {

constexpr int kMmaThreads = 128;  // 4 warps x 16 query rows = kRows

struct Problem {
  int64_t batch, Lq, Lk;
  int D;
  float scale;
  bool causal;
};

// Two neighbouring 16-bit elements of a shared-memory row (col even, so 4-byte aligned).
__device__ inline uint32_t pair_at(const uint16_t* tile, int ld, int row, int col) {
  return *reinterpret_cast<const uint32_t*>(tile + row * ld + col);
}

__device__ inline uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low half
  return *reinterpret_cast<const uint32_t*>(&v);
}

// c += a b for one 16 x 8 x 16 block.
__device__ inline void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();  // the launcher never picks this kernel below sm_80
#endif
}

template <int DP>
__global__ void __launch_bounds__(kMmaThreads)
    forward_mma_kernel(Problem p, Source<cpu::bf16> q, Source<cpu::bf16> k, Source<cpu::bf16> v,
                       cpu::bf16* __restrict__ out, float* __restrict__ lse) {
  constexpr int LDQ = DP + 8;     // row stride of the Q and K tiles: 8 rows of a fragment
  constexpr int LDV = kKeys + 8;  // load fall in distinct banks (stride = 4 words mod 32)
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(shared_bytes);  // [kRows][LDQ]
  uint16_t* Ks = Qs + kRows * LDQ;                             // [kKeys][LDQ]
  uint16_t* Vt = Ks + kKeys * LDQ;                             // [DP][LDV], V transposed

  const int64_t q_tiles = tiles(p.Lq, kRows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int r0 = warp * 16 + g, r1 = r0 + 8;  // this thread's two rows in the tile
  const int64_t rows[2] = {i0 + r0, i0 + r1};

  load_tile(Qs, LDQ, kRows, DP, q, b, i0, p.Lq, p.D);

  // Scores in base 2: exp(x) = exp2(x * log2(e)), folded into the scale.
  const float scale2 = p.scale * 1.4426950408889634f;
  const float inf = __int_as_float(0x7f800000);
  float m[2] = {-inf, -inf}, l[2] = {0.f, 0.f};
  float o[DP / 8][4];
#pragma unroll
  for (int n = 0; n < DP / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;

  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kRows);
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeys) {
    __syncthreads();  // every warp is done with the previous Ks and Vt
    load_tile(Ks, LDQ, kKeys, DP, k, b, j0, p.Lk, p.D);
    load_tile(Vt, LDV, kKeys, DP, v, b, j0, p.Lk, p.D, /*transpose=*/true);
    __syncthreads();

    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; ++kk) {
      const int c = kk * 16 + 2 * t;
      const uint32_t a[4] = {pair_at(Qs, LDQ, r0, c), pair_at(Qs, LDQ, r1, c),
                             pair_at(Qs, LDQ, r0, c + 8), pair_at(Qs, LDQ, r1, c + 8)};
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n)
        mma_bf16(s[n], a, pair_at(Ks, LDQ, n * 8 + g, c), pair_at(Ks, LDQ, n * 8 + g, c + 8));
    }

    // Scale, mask, and each row's maximum over the tile (the row's 64 scores are spread over
    // the 4 threads of a quad: lanes 4g .. 4g+3).
    float mx[2] = {-inf, -inf};
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t col = j0 + n * 8 + 2 * t + (e & 1), row = rows[e >> 1];
        const bool keep = col < p.Lk && !(p.causal && col > row);
        s[n][e] = keep ? s[n][e] * scale2 : -inf;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
      }
    float m_use[2], alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float m_new = fmaxf(m[h], mx[h]);
      m_use[h] = m_new == -inf ? 0.f : m_new;  // no inf - inf while a row has attended nothing
      alpha[h] = exp2f(m[h] - m_use[h]);
      m[h] = m_new;
      l[h] *= alpha[h];  // l is this thread's part of the row sum, summed over the quad at the end
    }
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] = exp2f(s[n][e] - m_use[e >> 1]);
        l[e >> 1] += s[n][e];
      }
#pragma unroll
    for (int n = 0; n < DP / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[n][e] *= alpha[e >> 1];

    // O += P V, 16 keys at a time.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      const uint32_t a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]),
                             pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                             pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      const int c = kk * 16 + 2 * t;
#pragma unroll
      for (int n = 0; n < DP / 8; ++n)
        mma_bf16(o[n], a, pair_at(Vt, LDV, n * 8 + g, c), pair_at(Vt, LDV, n * 8 + g, c + 8));
    }
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    const int64_t row = rows[h];
    if (row >= p.Lq) continue;
    if (t == 0) lse[b * p.Lq + row] = l[h] > 0.f ? m[h] * 0.6931471805599453f + logf(l[h]) : inf;
    const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;  // a row that attends nothing gives zeros
    cpu::bf16* out_row = out + (b * p.Lq + row) * p.D;
#pragma unroll
    for (int n = 0; n < DP / 8; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = n * 8 + 2 * t + c;
        if (col < p.D) out_row[col] = convert<cpu::bf16>(o[n][2 * h + c] * inv);
      }
  }
}

template <int DP>
Status launch(const FusedAttentionArgs<cpu::bf16>& a, cpu::bf16* out, float* lse,
              cudaStream_t stream) {
  constexpr int LDQ = DP + 8, LDV = kKeys + 8;
  const size_t bytes = sizeof(uint16_t) * size_t(kRows * LDQ + kKeys * LDQ + DP * LDV);
  const int64_t blocks = a.batch * tiles(a.Lq, kRows);
  if (blocks == 0) return ok_status();
  if (blocks > 0x7fffffff)
    return Status{"launch of attention forward_mma_kernel", "more than 2^31 - 1 blocks (batch * tiles)"};
  auto kernel = forward_mma_kernel<DP>;
  if (bytes > 48 * 1024) {
    const cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (e != cudaSuccess)
      return Status{"cudaFuncSetAttribute for attention forward_mma_kernel", cudaGetErrorString(e)};
  }
  const Problem p{a.batch, a.Lq, a.Lk, a.D, a.scale, a.causal};
  kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(
      p, source_of(a.q, a.D), source_of(a.k, a.D), source_of(a.v, a.D), out, lse);
  return launch_status("attention forward_mma_kernel");
}

}  // namespace

Status forward_mma(const FusedAttentionArgs<cpu::bf16>& a, cpu::bf16* out, float* lse,
                   cudaStream_t stream) {
  if (a.D <= 32) return launch<32>(a, out, lse, stream);
  if (a.D <= 64) return launch<64>(a, out, lse, stream);
  return launch<128>(a, out, lse, stream);
}

}  // namespace shallow::cuda::attention_detail
