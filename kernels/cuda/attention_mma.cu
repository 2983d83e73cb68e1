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
// The fragment layouts are described in attention_mma.cuh.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/attention_mma.cuh"

namespace shallow::cuda::attention_detail {
namespace {

template <int DP>
__global__ void __launch_bounds__(kMmaThreads)
    forward_mma_kernel(Problem p, Source<cpu::bf16> q, Source<cpu::bf16> k, Source<cpu::bf16> v,
                       cpu::bf16* __restrict__ out, float* __restrict__ lse) {
  // Row strides padded by 8 elements: the 8 rows a fragment load touches then start 4 banks
  // apart (DP + 8 and kKeys + 8 are 4 mod 32 in 32-bit words, or 20 for DP = 32).
  constexpr int LDQ = DP + 8;
  constexpr int LDV = kKeys + 8;
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
      uint32_t a[4];
      load_a(a, Qs, LDQ, warp * 16, kk * 16);
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) mma_bf16(s[n], a, Ks, LDQ, n * 8, kk * 16);
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
      uint32_t a[4];
      a_from_c(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < DP / 8; ++n) mma_bf16(o[n], a, Vt, LDV, n * 8, kk * 16);
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
  SH_RETURN_IF_FAILED(check_grid(blocks, "attention forward_mma_kernel"));
  auto kernel = forward_mma_kernel<DP>;
  SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention forward_mma_kernel"));
  const Problem p = problem_of(a);
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
