// Fused attention forward for f32 on tensor cores, each product taken as three TF32 products
// ("3xTF32"): a value x is split into hi = x rounded to TF32 (10-bit mantissa) and lo = the rest
// rounded to TF32, and a b = a_hi b_hi + a_hi b_lo + a_lo b_hi (the lo lo term, 2^-22 of the
// product, is dropped). That keeps each product within a few 2^-22 of the f32 one, where one
// TF32 product alone would be 2^-11 off, at three tensor-core products per FMA-tile product:
// still several times the f32 FMA rate of the GPU. Accumulators are f32.
//
// The block shape, pipeline and online softmax are those of the bf16 kernel
// (attention_mma_pipelined.cu, 16 query rows per warp): 4 warps and 64 query rows per block,
// 64-key tiles of K and V copied with cp.async into two buffers (tile j + 1 in flight while
// tile j is computed), Q's fragments split once and kept in registers, the mask only on tiles
// that need it, the empty 8-key blocks of the last tile skipped in a separate instantiation.
//
// mma.m16n8k8 with TF32 operands (PTX ISA; g = lane / 4, t = lane % 4; 32-bit elements):
//   A 16x8: a0 (row g, col t), a1 (row g+8, col t), a2 (row g, col t+4), a3 (row g+8, col t+4)
//   B 8x8:  b0 (row t, col g), b1 (row t+4, col g)
//   C 16x8: c0, c1 (row g, cols 2t, 2t+1), c2, c3 (row g+8, cols 2t, 2t+1)
// The scores' C layout is not P's A layout (cols 2t, 2t+1 against t, t+4); rather than moving
// values between lanes, P V takes P's A slot t to mean key 2t and slot t + 4 key 2t + 1, and
// reads V's rows in that same order for the B operand: the sum over keys is the same.
//
// Shared rows are DP + 4 floats apart (36 or 68): the 32 lanes' addresses of every fragment
// read (row g or 2t, column t or g) then fall in 32 different banks.
// Shared memory: (64 + 4 * 64) rows of DP + 4 floats: 45 KiB at DP = 32, 85 KiB at DP = 64.
//
// Only for operands that Source::vec allows (16-byte aligned rows, D a multiple of 4) and head
// dims up to 64; attention.cu runs the others on the FMA tiles (attention_simt.cu).
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/attention_mma.cuh"

namespace shallow::cuda::attention_detail {
namespace {

constexpr int kTf32Threads = 128;  // 4 warps of 16 query rows
constexpr int kTf32Rows = 64;
constexpr int kBlocks8 = kKeys / 8;  // 8-key blocks of a key tile

// x rounded to TF32 (round to nearest, ties away), as the 32-bit pattern mma takes.
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

// x = hi + lo (+ a remainder of 2^-22 of x): hi is x in TF32, lo the rest in TF32.
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

// c += a b in three TF32 products, the two small ones first.
__device__ inline void mma_3xtf32(float (&c)[4], const uint32_t (&a_hi)[4],
                                  const uint32_t (&a_lo)[4], Split b0, Split b1) {
  mma_tf32(c, a_lo, b0.hi, b1.hi);
  mma_tf32(c, a_hi, b0.lo, b1.lo);
  mma_tf32(c, a_hi, b0.hi, b1.hi);
}

// Issues the 16-byte copies (cp.async) of rows [row0, row0 + rows) of batch entry b into dst
// (row-major, ld floats), columns [0, D); rows at or past L are zero-filled. Columns [D, DP)
// are not touched. Every thread of the block takes part; the operand must be Source::vec.
__device__ inline void copy_rows_async(float* dst, int ld, int rows, const Source<float>& src,
                                       int64_t b, int64_t row0, int64_t L, int D) {
  constexpr int kChunk = 4;  // floats per 16-byte copy
  const float* base = src.data + src.layout.offset(b);
  const int chunks = D / kChunk;
  for (int idx = threadIdx.x; idx < rows * chunks; idx += blockDim.x) {
    const int r = idx / chunks, c0 = (idx % chunks) * kChunk;
    const int64_t row = row0 + r;
    const bool inside = row < L;
    // A row past L reads nothing; its address is row 0's, which exists (L > 0 here).
    const float* from = base + (inside ? row * src.ld : 0) + c0;
    cp_async_16(dst + r * ld + c0, from, inside);
  }
}

// The padded columns [D, DP) of `rows` consecutive shared rows of LD floats are zeros.
template <int DP, int LD>
__device__ inline void zero_padding(float* first_row, int rows, int D) {
  const int pad = DP - D;
  if (pad <= 0) return;
  for (int idx = threadIdx.x; idx < rows * pad; idx += blockDim.x)
    first_row[(idx / pad) * LD + D + idx % pad] = 0.f;
}

// What a warp carries across the key tiles of its 16 rows: rows[0] = first + g, rows[1] =
// rows[0] + 8.
template <int DP>
struct Tf32Rows {
  int64_t rows[2];
  float m[2];             // running maximum of the scaled scores (base 2)
  float l[2];             // this thread's part of the running sum of exponentials
  float o[DP / 8][4];     // unnormalised output accumulators
  uint32_t q_hi[DP / 8][4], q_lo[DP / 8][4];  // the rows of Q as split A fragments

  __device__ void start(int64_t first_row) {
    const int g = (threadIdx.x & 31) >> 2;
    rows[0] = first_row + g;
    rows[1] = rows[0] + 8;
    m[0] = m[1] = -__int_as_float(0x7f800000);
    l[0] = l[1] = 0.f;
#pragma unroll
    for (int n = 0; n < DP / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  }

  // Q's fragments from rows [row0, row0 + 16) of the shared tile Qs, split once.
  template <int LD>
  __device__ void load_q(const float* Qs, int row0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int kk = 0; kk < DP / 8; ++kk) {
      const float* r0 = Qs + (row0 + g) * LD + kk * 8 + t;
      const float* r1 = r0 + 8 * LD;
      const Split a0 = split(r0[0]), a1 = split(r1[0]), a2 = split(r0[4]), a3 = split(r1[4]);
      q_hi[kk][0] = a0.hi, q_hi[kk][1] = a1.hi, q_hi[kk][2] = a2.hi, q_hi[kk][3] = a3.hi;
      q_lo[kk][0] = a0.lo, q_lo[kk][1] = a1.lo, q_lo[kk][2] = a2.lo, q_lo[kk][3] = a3.lo;
    }
  }
};

// How many 8-key blocks of a 64-key tile hold one of the `left` keys still to come.
__device__ inline int live_blocks(int64_t left) {
  return left >= kKeys ? kBlocks8 : int((left + 7) / 8);
}

// One tile of keys [j0, j0 + 64): S = Q K^T, the online softmax, O += P V. kPartial: only the
// first `live` 8-key blocks are multiplied (the others hold no key: their scores stay 0 and are
// masked to -inf, their probabilities 0). `masked`: the tile reaches past Lk or the causal mask
// applies (else no key is tested).
template <int DP, int LD, bool kPartial>
__device__ __forceinline__ void attend_tile(Tf32Rows<DP>& w, const float* Kb, const float* Vb,
                                            int64_t j0, int live, bool masked, const Problem& p,
                                            float scale2) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const float inf = __int_as_float(0x7f800000);

  // S = Q K^T: block n holds keys j0 + 8n .. + 7; B's column g is key row 8n + g of the tile.
  float s[kBlocks8][4];
#pragma unroll
  for (int n = 0; n < kBlocks8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < DP / 8; ++kk)
#pragma unroll
    for (int n = 0; n < kBlocks8; ++n) {
      if (kPartial && n >= live) continue;
      const float* kr = Kb + (n * 8 + g) * LD + kk * 8 + t;
      mma_3xtf32(s[n], w.q_hi[kk], w.q_lo[kk], split(kr[0]), split(kr[4]));
    }

  // Scale (and mask), each row's maximum over the tile (its 64 scores sit in a quad), the new
  // running maximum, and the rescaling of the running sum and output.
  float mx[2] = {-inf, -inf};
#pragma unroll
  for (int n = 0; n < kBlocks8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (masked) {
        const int64_t col = j0 + n * 8 + 2 * t + (e & 1), row = w.rows[e >> 1];
        s[n][e] = col < p.Lk && !(p.causal && col > row) ? s[n][e] * scale2 : -inf;
      } else {
        s[n][e] *= scale2;
      }
      mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
    }
  float m_use[2], alpha[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
    const float m_new = fmaxf(w.m[h], mx[h]);
    m_use[h] = m_new == -inf ? 0.f : m_new;  // no inf - inf while a row has attended nothing
    alpha[h] = exp2f(w.m[h] - m_use[h]);
    w.m[h] = m_new;
    w.l[h] *= alpha[h];
  }
#pragma unroll
  for (int n = 0; n < kBlocks8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] = exp2f(s[n][e] - m_use[e >> 1]);
      w.l[e >> 1] += s[n][e];
    }
#pragma unroll
  for (int d = 0; d < DP / 8; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) w.o[d][e] *= alpha[e >> 1];

  // O += P V over each 8-key block: A slot t is key 2t (c0, c2), slot t + 4 key 2t + 1 (c1,
  // c3); B's rows t and t + 4 are those keys' rows of V, its column g output dim 8d + g.
#pragma unroll
  for (int n = 0; n < kBlocks8; ++n) {
    if (kPartial && n >= live) continue;
    const Split e0 = split(s[n][0]), e1 = split(s[n][2]), e2 = split(s[n][1]),
                e3 = split(s[n][3]);
    const uint32_t a_hi[4] = {e0.hi, e1.hi, e2.hi, e3.hi};
    const uint32_t a_lo[4] = {e0.lo, e1.lo, e2.lo, e3.lo};
    const float* vr = Vb + (n * 8 + 2 * t) * LD + g;
#pragma unroll
    for (int d = 0; d < DP / 8; ++d)
      mma_3xtf32(w.o[d], a_hi, a_lo, split(vr[d * 8]), split(vr[d * 8 + LD]));
  }
}

// The rows' outputs (divided by their sums; zeros for a row that attended nothing) and their
// log-sum-exp (natural log; inf for such a row), for batch entry b. Every lane takes part.
template <int DP>
__device__ inline void store_rows(Tf32Rows<DP>& w, int64_t b, const Problem& p,
                                  float* __restrict__ out, float* __restrict__ lse) {
  const int t = threadIdx.x & 3;
  const float inf = __int_as_float(0x7f800000);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    w.l[h] += __shfl_xor_sync(0xffffffffu, w.l[h], 1);
    w.l[h] += __shfl_xor_sync(0xffffffffu, w.l[h], 2);
    const int64_t row = w.rows[h];
    if (row >= p.Lq) continue;
    if (t == 0)
      lse[b * p.Lq + row] = w.l[h] > 0.f ? w.m[h] * 0.6931471805599453f + logf(w.l[h]) : inf;
    const float inv = w.l[h] > 0.f ? 1.f / w.l[h] : 0.f;
    float* out_row = out + (b * p.Lq + row) * p.D;
#pragma unroll
    for (int d = 0; d < DP / 8; ++d) {
      const int col = d * 8 + 2 * t;  // even, and D is a multiple of 4: col + 1 < D with col
      if (col < p.D)
        *reinterpret_cast<float2*>(out_row + col) =
            make_float2(w.o[d][2 * h] * inv, w.o[d][2 * h + 1] * inv);
    }
  }
}

// Blocks per SM the register bound asks for (ptxas -v, sm_90a: 210 registers at DP = 64, 143
// at DP = 32, no spills; 4 blocks at DP = 32 would cap them at 128, which spills). Shared
// memory allows 2 and 4.
template <int DP>
constexpr int kTf32MinBlocks = DP >= 64 ? 2 : 3;

template <int DP>
__global__ void __launch_bounds__(kTf32Threads, kTf32MinBlocks<DP>)
    forward_tf32_kernel(Problem p, Source<float> q, Source<float> k, Source<float> v,
                        float* __restrict__ out, float* __restrict__ lse) {
  constexpr int LD = DP + 4;
  constexpr int kTile = kKeys * LD;  // floats of one K or V buffer
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  float* Qs = reinterpret_cast<float*>(shared_bytes);  // [kTf32Rows][LD]
  float* Ks = Qs + kTf32Rows * LD;                      // [2][kKeys][LD]
  float* Vs = Ks + 2 * kTile;                           // [2][kKeys][LD]

  const int64_t q_tiles = tiles(p.Lq, kTf32Rows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kTf32Rows;
  const int warp_row0 = (threadIdx.x >> 5) * 16;
  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kTf32Rows);
  const bool warp_has_rows = i0 + warp_row0 < p.Lq;

  zero_padding<DP, LD>(Qs, kTf32Rows + 4 * kKeys, p.D);  // Q, both K and both V buffers
  copy_rows_async(Qs, LD, kTf32Rows, q, b, i0, p.Lq, p.D);
  if (j_end > 0) {
    copy_rows_async(Ks, LD, kKeys, k, b, 0, p.Lk, p.D);
    copy_rows_async(Vs, LD, kKeys, v, b, 0, p.Lk, p.D);
  }
  cp_async_commit();

  const float scale2 = p.scale * 1.4426950408889634f;  // scores in base 2
  Tf32Rows<DP> w;
  w.start(i0 + warp_row0);

  int buf = 0;
  for (int64_t j0 = 0; j0 < j_end; j0 += kKeys, buf ^= 1) {
    const bool has_next = j0 + kKeys < j_end;
    if (has_next) {  // the other buffer was released by the barrier at the end of the last tile
      copy_rows_async(Ks + (buf ^ 1) * kTile, LD, kKeys, k, b, j0 + kKeys, p.Lk, p.D);
      copy_rows_async(Vs + (buf ^ 1) * kTile, LD, kKeys, v, b, j0 + kKeys, p.Lk, p.D);
      cp_async_commit();
      cp_async_wait<1>();  // all but the group just issued: tile j (and Q) have landed
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // every thread's copies of tile j (and the zeroed padding) are visible

    if (warp_has_rows) {  // a warp whose rows are all past Lq only helps with the copies
      if (j0 == 0) w.template load_q<LD>(Qs, warp_row0);
      const int live = live_blocks(j_end - j0);
      const bool masked = j0 + kKeys > p.Lk || p.causal;
      const float* Kb = Ks + buf * kTile;
      const float* Vb = Vs + buf * kTile;
      if (live == kBlocks8)
        attend_tile<DP, LD, false>(w, Kb, Vb, j0, live, masked, p, scale2);
      else
        attend_tile<DP, LD, true>(w, Kb, Vb, j0, live, masked, p, scale2);
    }
    __syncthreads();  // every warp is done with this buffer before the next copy into it
  }
  cp_async_wait<0>();  // with Lk == 0 the copy of Q is still owed
  store_rows(w, b, p, out, lse);
}

template <int DP>
Status launch(const FusedAttentionArgs<float>& a, const Source<float>& q, const Source<float>& k,
              const Source<float>& v, float* out, float* lse, cudaStream_t stream) {
  constexpr int LD = DP + 4;
  const size_t bytes = sizeof(float) * size_t((kTf32Rows + 4 * kKeys) * LD);
  const int64_t blocks = a.batch * tiles(a.Lq, kTf32Rows);
  if (blocks == 0) return ok_status();
  SH_RETURN_IF_FAILED(check_grid(blocks, "attention forward_tf32_kernel"));
  auto kernel = forward_tf32_kernel<DP>;
  SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention forward_tf32_kernel"));
  kernel<<<unsigned(blocks), kTf32Threads, bytes, stream>>>(problem_of(a), q, k, v, out, lse);
  return launch_status("attention forward_tf32_kernel");
}

}  // namespace

bool can_forward_tf32(const FusedAttentionArgs<float>& a, const float* out) {
  // 16-byte copies need aligned rows; the output is stored in 8-byte pairs.
  return a.D <= kTf32MaxD && source_of(a.q, a.D).vec && source_of(a.k, a.D).vec &&
         source_of(a.v, a.D).vec && reinterpret_cast<uintptr_t>(out) % 16 == 0;
}

Status forward_tf32(const FusedAttentionArgs<float>& a, float* out, float* lse,
                    cudaStream_t stream) {
  const Source<float> q = source_of(a.q, a.D), k = source_of(a.k, a.D), v = source_of(a.v, a.D);
  if (a.D <= 32) return launch<32>(a, q, k, v, out, lse, stream);
  return launch<64>(a, q, k, v, out, lse, stream);
}

}  // namespace shallow::cuda::attention_detail
