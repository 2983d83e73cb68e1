// Fused attention forward for bf16 on tensor cores, pipelined: the same block shape and online
// softmax as attention_mma.cu (4 warps, 64 query rows, tiles of 64 keys, head dim padded with
// zeros to DP), with the operands moved differently:
//   - K and V tiles are copied with cp.async (16-byte chunks) into two shared-memory buffers:
//     tile j + 1 is in flight while tile j is computed;
//   - V stays row-major (no transposed scalar stores); its B fragments come from
//     ldmatrix.trans, those of K from ldmatrix, 4 blocks of 8 x 8 per instruction;
//   - each warp's Q fragments are read from shared memory once and kept in registers;
//   - the mask is applied only on tiles that need it (the last, or causal ones), and warps
//     whose 16 rows are all past Lq skip the products (at Lq = 197, 3 of the last tile's 4);
//   - on the last key tile only the 16-key slices that hold a key are multiplied (at Lk =
//     197 one of four: the others' probabilities are zeros, so the sums are the same bits);
//   - the output is stored as bf16 pairs.
// Rows are DP + 8 elements apart (80, 144 or 272 bytes: 5, 9 or 17 chunks of 16 bytes), so the
// 8 row addresses of an ldmatrix block fall in 8 different 16-byte bank groups.
//
// Shared memory: (64 R + 4 * 64) rows of DP + 8 bf16: 25, 46 or 85 KiB at DP = 32, 64, 128
// with R = 1 (16 query rows per warp); 55 KiB at DP = 64 with R = 2 (32 rows per warp).
// Registers (ptxas -v, sm_90a, with the bounds of kMinBlocks): R = 1: 121, 139 and 200 per
// thread, no spills; so 4, 3 and 2 blocks of 4 warps per SM (registers bind at DP = 64: 4
// blocks would cap them at 128, which spills). R = 2: 190 and 237 at DP = 32 and 64, 2 blocks.
//
// Only for operands that Source::vec allows (16-byte aligned rows, D a multiple of 8); the
// launcher in attention.cu falls back to attention_mma.cu otherwise.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/attention_mma.cuh"
#include "kernels/cuda/attention_mma_forward_tile.cuh"

namespace shallow::cuda::attention_detail {
namespace {

// R is the number of 16-row slices per warp: 1 (blocks of 64 query rows) or 2 (blocks of 128,
// each warp 32 rows). With 2, every K and V fragment read from shared memory by ldmatrix
// feeds two MMAs instead of one: half the shared-memory traffic per product, and the K/V tiles
// of a block serve twice the rows.
template <int DP, int R>
__global__ void __launch_bounds__(kMmaThreads, kForwardMinBlocks<DP, R>)
    forward_mma_pipelined_kernel(Problem p, Source<cpu::bf16> q, Source<cpu::bf16> k,
                                 Source<cpu::bf16> v, cpu::bf16* __restrict__ out,
                                 float* __restrict__ lse) {
  constexpr int LD = DP + 8;
  constexpr int kBlockRows = kRows * R;
  constexpr int kTile = kKeys * LD;  // elements of one K or V buffer
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(shared_bytes);  // [kBlockRows][LD]
  uint16_t* Ks = Qs + kBlockRows * LD;                         // [2][kKeys][LD]
  uint16_t* Vs = Ks + 2 * kTile;                               // [2][kKeys][LD]

  const int64_t q_tiles = tiles(p.Lq, kBlockRows);
  const int64_t b = blockIdx.x / q_tiles, i0 = (blockIdx.x % q_tiles) * kBlockRows;
  const int warp_row0 = (threadIdx.x >> 5) * 16 * R;
  const int64_t j_end = key_end(p.Lk, p.causal, i0 + kBlockRows);
  const bool warp_has_rows = i0 + warp_row0 < p.Lq;

  zero_padding<DP, LD>(Qs, kBlockRows + 4 * kKeys, p.D);  // Q, both K and both V buffers
  // Q and the first K, V tile form the first group of copies.
  copy_rows_async(Qs, LD, kBlockRows, q, b, i0, p.Lq, p.D);
  if (j_end > 0) {
    copy_rows_async(Ks, LD, kKeys, k, b, 0, p.Lk, p.D);
    copy_rows_async(Vs, LD, kKeys, v, b, 0, p.Lk, p.D);
  }
  cp_async_commit();

  const float scale2 = p.scale * 1.4426950408889634f;  // scores in base 2
  ForwardRows<DP, R> w;
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

    // A warp whose rows are all past Lq (in the last query tile) only helps with the copies.
    if (warp_has_rows) {
      if (j0 == 0) w.template load_q<LD>(Qs, warp_row0);
      attend_keys<DP, R, LD>(w, Ks + buf * kTile, Vs + buf * kTile, j0, live_slices(j_end - j0),
                             j0 + kKeys > p.Lk || p.causal, p, scale2);
    }
    __syncthreads();  // every warp is done with this buffer before the next copy into it
  }
  cp_async_wait<0>();  // with Lk == 0 the copy of Q is still owed
  store_rows(w, b, p, out, lse);
}

template <int DP, int R>
Status launch(const FusedAttentionArgs<cpu::bf16>& a, const Source<cpu::bf16>& q,
              const Source<cpu::bf16>& k, const Source<cpu::bf16>& v, cpu::bf16* out, float* lse,
              cudaStream_t stream) {
  constexpr int LD = DP + 8;
  const size_t bytes = sizeof(uint16_t) * size_t((kRows * R + 4 * kKeys) * LD);
  const int64_t blocks = a.batch * tiles(a.Lq, kRows * R);
  if (blocks == 0) return ok_status();
  SH_RETURN_IF_FAILED(check_grid(blocks, "attention forward_mma_pipelined_kernel"));
  auto kernel = forward_mma_pipelined_kernel<DP, R>;
  SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention forward_mma_pipelined_kernel"));
  kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(problem_of(a), q, k, v, out, lse);
  return launch_status("attention forward_mma_pipelined_kernel");
}

}  // namespace

bool can_forward_mma_pipelined(const FusedAttentionArgs<cpu::bf16>& a, const cpu::bf16* out) {
  // 16-byte copies need aligned rows; the output is stored in aligned bf16 pairs.
  return source_of(a.q, a.D).vec && source_of(a.k, a.D).vec && source_of(a.v, a.D).vec &&
         reinterpret_cast<uintptr_t>(out) % 16 == 0;
}

Status forward_mma_pipelined(const FusedAttentionArgs<cpu::bf16>& a, cpu::bf16* out, float* lse,
                             cudaStream_t stream, int slices_per_warp) {
  const Source<cpu::bf16> q = source_of(a.q, a.D), k = source_of(a.k, a.D),
                          v = source_of(a.v, a.D);
  const bool two = slices_per_warp == 2;  // head dims up to 64 only: 128 would spill
  if (a.D <= 32) return two ? launch<32, 2>(a, q, k, v, out, lse, stream) : launch<32, 1>(a, q, k, v, out, lse, stream);
  if (a.D <= 64) return two ? launch<64, 2>(a, q, k, v, out, lse, stream) : launch<64, 1>(a, q, k, v, out, lse, stream);
  return launch<128, 1>(a, q, k, v, out, lse, stream);
}

}  // namespace shallow::cuda::attention_detail
