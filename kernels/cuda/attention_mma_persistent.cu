// Fused attention forward for bf16 on tensor cores, persistent: the arithmetic of
// attention_mma_pipelined.cu (attention_mma_forward_tile.cuh), scheduled differently. There a
// block computes one query tile and exits; at short sequences (ViT: 197 tokens, 4 key tiles)
// each block then spends much of its life waiting for its first copies, with only 2 or 3
// blocks per multiprocessor to cover for it. Here the grid is as many blocks as fit at once,
// and block i takes query tiles i, i + grid, ... (a query tile: 64 R rows of one batch entry
// and head). The copies run one step ahead across tiles: while a query tile's last keys are
// computed, the next query tile's Q and first K, V tile are already in flight (two Q buffers,
// two K and V buffers).
//
// Shared memory: (2 * 64 R + 4 * 64) rows of DP + 8 bf16: 46 KiB at DP = 64 with R = 1, 74 KiB
// with R = 2. Only for operands that Source::vec allows and Lk > 0 (the launcher in
// attention.cu takes attention_mma_pipelined.cu otherwise).
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.h"
#include "kernels/cuda/attention_mma.cuh"
#include "kernels/cuda/attention_mma_forward_tile.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda::attention_detail {
namespace {

template <int DP, int R>
__global__ void __launch_bounds__(kMmaThreads, kForwardMinBlocks<DP, R>)
    forward_mma_persistent_kernel(Problem p, Source<cpu::bf16> q, Source<cpu::bf16> k,
                                  Source<cpu::bf16> v, cpu::bf16* __restrict__ out,
                                  float* __restrict__ lse) {
  constexpr int LD = DP + 8;
  constexpr int kBlockRows = kRows * R;
  constexpr int kQTile = kBlockRows * LD;  // elements of one Q buffer
  constexpr int kTile = kKeys * LD;        // elements of one K or V buffer
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(shared_bytes);  // [2][kBlockRows][LD]
  uint16_t* Ks = Qs + 2 * kQTile;                              // [2][kKeys][LD]
  uint16_t* Vs = Ks + 2 * kTile;                               // [2][kKeys][LD]

  const int64_t q_tiles = tiles(p.Lq, kBlockRows), items = p.batch * q_tiles;
  const int warp_row0 = (threadIdx.x >> 5) * 16 * R;
  const float scale2 = p.scale * 1.4426950408889634f;  // scores in base 2

  // The query tile being computed: batch entry b, first row i0, keys [0, j_end).
  int64_t item = blockIdx.x, b = 0, i0 = 0, j_end = 0;
  auto place = [&](int64_t it, int64_t& bb, int64_t& ii0, int64_t& jj_end) {
    bb = it / q_tiles;
    ii0 = (it % q_tiles) * kBlockRows;
    jj_end = key_end(p.Lk, p.causal, ii0 + kBlockRows);  // >= 1: Lk > 0
  };
  if (item >= items) return;
  place(item, b, i0, j_end);

  zero_padding<DP, LD>(Qs, 2 * kBlockRows + 4 * kKeys, p.D);  // both Q, K and V buffers
  copy_rows_async(Qs, LD, kBlockRows, q, b, i0, p.Lq, p.D);
  copy_rows_async(Ks, LD, kKeys, k, b, 0, p.Lk, p.D);
  copy_rows_async(Vs, LD, kKeys, v, b, 0, p.Lk, p.D);
  cp_async_commit();

  ForwardRows<DP, R> w;
  w.start(i0 + warp_row0);
  int qbuf = 0, buf = 0;
  int64_t j0 = 0;
  while (true) {
    // The step after this one: the next key tile of this query tile, or the first of the next.
    const bool same_item = j0 + kKeys < j_end;
    const int64_t next_item = same_item ? item : item + gridDim.x;
    const bool has_next = next_item < items;
    int64_t nb = b, ni0 = i0, nj_end = j_end;
    if (has_next) {  // buffers buf ^ 1 (and qbuf ^ 1) were released by the last step's barrier
      if (!same_item) {
        place(next_item, nb, ni0, nj_end);
        copy_rows_async(Qs + (qbuf ^ 1) * kQTile, LD, kBlockRows, q, nb, ni0, p.Lq, p.D);
      }
      const int64_t nj0 = same_item ? j0 + kKeys : 0;
      copy_rows_async(Ks + (buf ^ 1) * kTile, LD, kKeys, k, nb, nj0, p.Lk, p.D);
      copy_rows_async(Vs + (buf ^ 1) * kTile, LD, kKeys, v, nb, nj0, p.Lk, p.D);
      cp_async_commit();
      cp_async_wait<1>();  // all but the group just issued: this step's tiles have landed
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // every thread's copies for this step (and the padding) are visible

    // A warp whose rows are all past Lq (in a last query tile) only helps with the copies.
    if (i0 + warp_row0 < p.Lq) {
      if (j0 == 0) w.template load_q<LD>(Qs + qbuf * kQTile, warp_row0);
      attend_keys<DP, R, LD>(w, Ks + buf * kTile, Vs + buf * kTile, j0, live_slices(j_end - j0),
                             j0 + kKeys > p.Lk || p.causal, p, scale2);
    }
    if (!same_item) {  // this query tile is done
      store_rows(w, b, p, out, lse);
      if (!has_next) break;
      item = next_item;
      b = nb;
      i0 = ni0;
      j_end = nj_end;
      j0 = 0;
      qbuf ^= 1;
      w.start(i0 + warp_row0);
    } else {
      j0 += kKeys;
    }
    buf ^= 1;
    __syncthreads();  // every warp is done with this step's buffers before the next copy into them
  }
}

template <int DP, int R>
Status launch(const FusedAttentionArgs<cpu::bf16>& a, const Source<cpu::bf16>& q,
              const Source<cpu::bf16>& k, const Source<cpu::bf16>& v, cpu::bf16* out, float* lse,
              cudaStream_t stream, int64_t max_blocks) {
  constexpr int LD = DP + 8;
  const size_t bytes = sizeof(uint16_t) * size_t((2 * kRows * R + 4 * kKeys) * LD);
  const int64_t items = a.batch * tiles(a.Lq, kRows * R);
  if (items == 0) return ok_status();
  auto kernel = forward_mma_persistent_kernel<DP, R>;
  SH_RETURN_IF_FAILED(allow_shared(kernel, bytes, "attention forward_mma_persistent_kernel"));
  // As many blocks as are resident at once (the query tiles beyond are taken in turns).
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kMmaThreads, bytes) !=
          cudaSuccess ||
      per_sm < 1) {
    cudaGetLastError();
    per_sm = 1;
  }
  int64_t blocks = int64_t(per_sm) * multiprocessors();
  if (max_blocks > 0 && max_blocks < blocks) blocks = max_blocks;
  if (items < blocks) blocks = items;
  kernel<<<unsigned(blocks), kMmaThreads, bytes, stream>>>(problem_of(a), q, k, v, out, lse);
  return launch_status("attention forward_mma_persistent_kernel");
}

}  // namespace

Status forward_mma_persistent(const FusedAttentionArgs<cpu::bf16>& a, cpu::bf16* out, float* lse,
                              cudaStream_t stream, int slices_per_warp, int64_t max_blocks) {
  const Source<cpu::bf16> q = source_of(a.q, a.D), k = source_of(a.k, a.D),
                          v = source_of(a.v, a.D);
  const bool two = slices_per_warp == 2;  // head dims up to 64 only: 128 would spill
  if (a.D <= 32) return two ? launch<32, 2>(a, q, k, v, out, lse, stream, max_blocks) : launch<32, 1>(a, q, k, v, out, lse, stream, max_blocks);
  if (a.D <= 64) return two ? launch<64, 2>(a, q, k, v, out, lse, stream, max_blocks) : launch<64, 1>(a, q, k, v, out, lse, stream, max_blocks);
  return launch<128, 1>(a, q, k, v, out, lse, stream, max_blocks);
}

}  // namespace shallow::cuda::attention_detail
