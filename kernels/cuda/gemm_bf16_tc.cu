// bf16 GEMM on tensor cores: C = epilogue(op(A) op(B)), bf16 in and out, f32 accumulation.
//
// Tiling. A block of 256 threads (8 warps) computes a 128 x 256 tile of C. The warps form a
// 2 x 4 grid, each owning a 64 x 64 sub-tile held as 4 x 8 mma tiles of 16 x 8 (128 f32
// accumulators per thread). K is walked in slices of 32, two mma steps of 16 each.
//
// Pipeline. Slices of A (128 x 32) and B (32 x 256) are copied from global to shared memory by
// cp.async in 16-byte chunks, into a ring of 4 stages: while the warps multiply slice k, the
// copies of slices k+1..k+3 are in flight. Chunks past the matrix edges are zero-filled by
// cp.async itself (a source size below 16 bytes, 0 for a chunk wholly outside).
//
// Layouts. Shared memory keeps each operand as it is stored in global memory, so every copy is
// a straight 16-byte chunk: A stored [M, K] (trans_a false) is "K-major", stored [K, M] is
// "M-major"; likewise B stored [N, K] (trans_b true) is K-major, [K, N] N-major. ldmatrix
// builds the mma fragments from either: plain for K-major, .trans for M/N-major. Each shared
// row is padded by 16 bytes, which puts the 8 rows one ldmatrix reads in 8 distinct groups of
// 4 banks (row strides of 80, 272 and 528 bytes are 16 mod 128 or 4 words mod 32).
//
// Epilogue. Each thread finishes its accumulators straight from registers (alpha, beta, bias,
// activation; DeviceEpilogue) and stores them in pairs of bf16 where C allows it.
#include <climits>

#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

constexpr int kBM = 128, kBN = 256, kBK = 32, kStages = 4;
constexpr int kWarpsM = 2, kWarpsN = 4, kBlockThreads = 32 * kWarpsM * kWarpsN;
constexpr int kWarpM = kBM / kWarpsM, kWarpN = kBN / kWarpsN;  // 64 x 64 per warp
constexpr int kTilesM = kWarpM / 16, kTilesN = kWarpN / 8;       // mma tiles per warp: 4 x 8
constexpr int kPad = 8;                                          // bf16 per shared row: 16 bytes

// One operand's slice in shared memory: `extent` rows of M (or N) by kBK of K, stored in the
// global layout: K-major [extent][kBK + pad] or M/N-major [kBK][extent + pad].
template <bool kKMajor, int kExtent>
struct SharedTile {
  static constexpr int kRows = kKMajor ? kExtent : kBK;  // stored rows
  static constexpr int kCols = kKMajor ? kBK : kExtent;  // contiguous elements per row
  static constexpr int kLd = kCols + kPad;
  static constexpr int kBytes = kRows * kLd * 2;
  static_assert((kLd * 2) % 16 == 0 && kBytes % 16 == 0, "16-byte chunks stay aligned");
};

// ---- PTX wrappers (sm_80 instructions; they run on sm_90)

__device__ inline uint32_t shared_address(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

// Copies `bytes` (0 to 16) from global to shared and zero-fills the rest of the 16.
__device__ inline void cp_async_16(uint32_t dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes)
               : "memory");
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most `n` of this thread's committed groups are still in flight.
template <int n>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(n) : "memory");
}

__device__ inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a b for one 16 x 8 tile: a 16 x 16 (row), b 16 x 8 (col), bf16 in, f32 accumulators.
// Registers only (not volatile), so the compiler may interleave it with the fragment loads.
__device__ inline void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ---- global -> shared

// Queues the copy of a Tile's stored rows [row0, row0 + kRows) and columns [col0, col0 + kCols)
// of a row-major matrix g (row stride ld) whose valid part is rows < row_end, cols < col_end.
// col0 is a multiple of 8 and g, ld aligned (bf16_tensor_core_applies), so every chunk's
// source is 16-byte aligned; a chunk reads only its valid elements.
template <class Tile>
__device__ inline void load_tile(uint32_t dst, const bf16* g, int64_t ld, int64_t row0,
                                 int64_t row_end, int64_t col0, int64_t col_end) {
  constexpr int kChunksPerRow = Tile::kCols / 8;
  constexpr int kChunks = Tile::kRows * kChunksPerRow;
  static_assert(kChunks % kBlockThreads == 0, "every thread copies the same number of chunks");
#pragma unroll
  for (int i = 0; i < kChunks / kBlockThreads; ++i) {
    const int chunk = int(threadIdx.x) + i * kBlockThreads;
    const int r = chunk / kChunksPerRow, c = (chunk % kChunksPerRow) * 8;
    const int64_t gr = row0 + r, gc = col0 + c;
    const bf16* src = g;  // a valid address even when no byte is read
    int bytes = 0;
    if (gr < row_end && gc < col_end) {
      const int64_t left = col_end - gc;
      bytes = left >= 8 ? 16 : int(left) * 2;
      src = g + gr * ld + gc;
    }
    cp_async_16(dst + uint32_t((r * Tile::kLd + c) * 2), src, bytes);
  }
}

// ---- shared -> fragments
//
// ldmatrix.x4 reads four 8 x 8 matrices; lanes 8i..8i+7 give the row addresses of matrix i,
// and register i of every lane receives matrix i's elements (row lane/4, columns 2(lane%4) and
// 2(lane%4)+1), or with .trans those of the transposed matrix. The mma fragments are:
//   A (16 x 16): a0 = rows 0-7 / k 0-7, a1 = rows 8-15 / k 0-7, a2 = rows 0-7 / k 8-15,
//                a3 = rows 8-15 / k 8-15;
//   B (16 x 8):  b0 = k 0-7, b1 = k 8-15, each lane holding two k of column lane/4.

// A's fragment for rows [m0, m0 + 16) and k [k0, k0 + 16) of the slice at `base`.
template <bool kKMajor>
__device__ inline void load_a_fragment(uint32_t (&a)[4], uint32_t base, int m0, int k0, int lane) {
  using Tile = SharedTile<kKMajor, kBM>;
  if constexpr (kKMajor) {  // stored [m][k]: matrix i at rows m0 + 8 (i % 2), k0 + 8 (i / 2)
    const int m = m0 + (lane % 16), k = k0 + (lane / 16) * 8;
    ldmatrix_x4(a, base + uint32_t((m * Tile::kLd + k) * 2));
  } else {  // stored [k][m]: matrix i's stored rows are k0 + 8 (i / 2) + 0..7, at m0 + 8 (i % 2)
    const int k = k0 + (lane % 8) + (lane / 16) * 8, m = m0 + ((lane / 8) % 2) * 8;
    ldmatrix_x4_trans(a, base + uint32_t((k * Tile::kLd + m) * 2));
  }
}

// B's fragments of two mma tiles, columns [n0, n0 + 8) into b[0], b[1] and [n0 + 8, n0 + 16)
// into b[2], b[3], for k [k0, k0 + 16).
template <bool kKMajor>
__device__ inline void load_b_fragments(uint32_t (&b)[4], uint32_t base, int n0, int k0, int lane) {
  using Tile = SharedTile<kKMajor, kBN>;
  if constexpr (kKMajor) {  // stored [n][k]: matrix i at n0 + 8 (i / 2), k0 + 8 (i % 2)
    const int n = n0 + (lane % 8) + (lane / 16) * 8, k = k0 + ((lane / 8) % 2) * 8;
    ldmatrix_x4(b, base + uint32_t((n * Tile::kLd + k) * 2));
  } else {  // stored [k][n]: matrix i's stored rows k0 + 8 (i % 2) + 0..7, at n0 + 8 (i / 2)
    const int k = k0 + (lane % 8) + ((lane / 8) % 2) * 8, n = n0 + (lane / 16) * 8;
    ldmatrix_x4_trans(b, base + uint32_t((k * Tile::kLd + n) * 2));
  }
}

// The block's tile in the grid of output tiles. Consecutive blocks walk down a group of 8 tile
// rows before moving right, so the blocks resident together share slices of A and B in L2.
__device__ inline void tile_position(int64_t& tile_m, int64_t& tile_n) {
  constexpr int64_t kGroup = 8;
  const int64_t tiles_n = gridDim.x, tiles_m = gridDim.y;
  const int64_t id = int64_t(blockIdx.y) * tiles_n + blockIdx.x;
  const int64_t per_group = kGroup * tiles_n;
  const int64_t first_m = (id / per_group) * kGroup;
  const int64_t group_rows = tiles_m - first_m < kGroup ? tiles_m - first_m : kGroup;
  tile_m = first_m + (id % per_group) % group_rows;
  tile_n = (id % per_group) / group_rows;
}

template <bool kAKMajor, bool kBKMajor>
__global__ void __launch_bounds__(kBlockThreads, 1)
gemm_bf16_tc_kernel(int64_t M, int64_t N, int64_t K, const bf16* __restrict__ A, int64_t lda,
                    int64_t stride_a, const bf16* __restrict__ B, int64_t ldb, int64_t stride_b,
                    bf16* __restrict__ C, int64_t ldc, int64_t stride_c, int64_t batch0,
                    bool store_pairs, DeviceEpilogue<bf16> ep) {
  using TileA = SharedTile<kAKMajor, kBM>;
  using TileB = SharedTile<kBKMajor, kBN>;
  constexpr int kStageBytes = TileA::kBytes + TileB::kBytes;
  extern __shared__ __align__(16) unsigned char smem[];
  const uint32_t smem_base = shared_address(smem);

  const int64_t b = batch0 + blockIdx.z;
  A += b * stride_a;
  B += b * stride_b;
  C += b * stride_c;
  int64_t tile_m, tile_n;
  tile_position(tile_m, tile_n);
  const int64_t m_block = tile_m * kBM, n_block = tile_n * kBN;

  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  const int warp_m = (warp / kWarpsN) * kWarpM, warp_n = (warp % kWarpsN) * kWarpN;

  // Queues the copies of K slice `kt` into stage `stage`.
  auto load_stage = [&](int stage, int64_t kt) {
    const uint32_t a_dst = smem_base + uint32_t(stage * kStageBytes);
    const uint32_t b_dst = a_dst + uint32_t(TileA::kBytes);
    const int64_t k0 = kt * kBK;
    if constexpr (kAKMajor) load_tile<TileA>(a_dst, A, lda, m_block, M, k0, K);
    else load_tile<TileA>(a_dst, A, lda, k0, K, m_block, M);
    if constexpr (kBKMajor) load_tile<TileB>(b_dst, B, ldb, n_block, N, k0, K);
    else load_tile<TileB>(b_dst, B, ldb, k0, K, n_block, N);
  };

  float acc[kTilesM][kTilesN][4];
#pragma unroll
  for (int i = 0; i < kTilesM; ++i)
#pragma unroll
    for (int j = 0; j < kTilesN; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  const int64_t k_tiles = (K + kBK - 1) / kBK;
  // Prologue: the first kStages - 1 slices in flight. One group is committed per slice, empty
  // past the end, so that "slice kt has landed" is always "at most kStages - 2 groups pending".
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) load_stage(s, s);
    cp_async_commit();
  }

  // Slice kt is read from stage kt % kStages; slice kt + kStages - 1 goes into the stage slice
  // kt - 1 used, (kt + kStages - 1) % kStages.
  int read_stage = 0, write_stage = kStages - 1;
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    cp_async_wait<kStages - 2>();  // this thread's copies of slice kt are done
    __syncthreads();               // everyone's are; and everyone has finished slice kt - 1
    const int64_t next = kt + kStages - 1;
    if (next < k_tiles) load_stage(write_stage, next);
    cp_async_commit();
    write_stage = write_stage + 1 == kStages ? 0 : write_stage + 1;

    const uint32_t a_base = smem_base + uint32_t(read_stage * kStageBytes);
    read_stage = read_stage + 1 == kStages ? 0 : read_stage + 1;
    const uint32_t b_base = a_base + uint32_t(TileA::kBytes);
#pragma unroll
    for (int k0 = 0; k0 < kBK; k0 += 16) {
      uint32_t a_frag[kTilesM][4];
      uint32_t b_frag[kTilesN / 2][4];
#pragma unroll
      for (int i = 0; i < kTilesM; ++i)
        load_a_fragment<kAKMajor>(a_frag[i], a_base, warp_m + i * 16, k0, lane);
#pragma unroll
      for (int j = 0; j < kTilesN / 2; ++j)
        load_b_fragments<kBKMajor>(b_frag[j], b_base, warp_n + j * 16, k0, lane);
#pragma unroll
      for (int i = 0; i < kTilesM; ++i)
#pragma unroll
        for (int j = 0; j < kTilesN; ++j)
          mma_bf16(acc[i][j], a_frag[i], b_frag[j / 2][(j % 2) * 2], b_frag[j / 2][(j % 2) * 2 + 1]);
    }
  }
  cp_async_wait<0>();  // nothing real is pending (the trailing groups are empty), but be tidy

  // Accumulator e of tile (i, j) is C[row0 + 8 (e / 2)][col0 + e % 2] with
  // row0 = 16 i + lane / 4 and col0 = 8 j + 2 (lane % 4) inside the warp's sub-tile.
#pragma unroll
  for (int i = 0; i < kTilesM; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = m_block + warp_m + i * 16 + lane / 4 + h * 8;
      if (row >= M) continue;
      bf16* c_row = C + row * ldc;
#pragma unroll
      for (int j = 0; j < kTilesN; ++j) {
        const int64_t col = n_block + warp_n + j * 8 + (lane % 4) * 2;
        if (col >= N) continue;
        const bf16 v0 = ep.finish(acc[i][j][h * 2], c_row + col, row, col);
        if (col + 1 < N) {
          const bf16 v1 = ep.finish(acc[i][j][h * 2 + 1], c_row + col + 1, row, col + 1);
          if (store_pairs) {
            *reinterpret_cast<uint32_t*>(c_row + col) = uint32_t(v0.bits) | (uint32_t(v1.bits) << 16);
          } else {
            c_row[col] = v0;
            c_row[col + 1] = v1;
          }
        } else {
          c_row[col] = v0;
        }
      }
    }
  }
}

template <bool kAKMajor, bool kBKMajor>
Status launch(int64_t batch, int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda,
              int64_t stride_a, const bf16* B, int64_t ldb, int64_t stride_b, bf16* C,
              int64_t ldc, int64_t stride_c, const DeviceEpilogue<bf16>& ep, cudaStream_t stream) {
  constexpr int kSmemBytes =
      kStages * (SharedTile<kAKMajor, kBM>::kBytes + SharedTile<kBKMajor, kBN>::kBytes);
  auto kernel = gemm_bf16_tc_kernel<kAKMajor, kBKMajor>;
  // Above 48 KiB of dynamic shared memory a kernel must opt in (per device; cheap to repeat).
  SH_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  // Pairs of bf16 are stored as one 4-byte word where every pair's address is 4-byte aligned.
  const bool store_pairs = reinterpret_cast<uintptr_t>(C) % 4 == 0 && ldc % 2 == 0 &&
                           (batch <= 1 || stride_c % 2 == 0);
  const dim3 grid_xy{unsigned((N + kBN - 1) / kBN), unsigned((M + kBM - 1) / kBM), 1};
  for (int64_t b0 = 0; b0 < batch; b0 += kMaxGridZ) {
    const int64_t nb = batch - b0 < kMaxGridZ ? batch - b0 : kMaxGridZ;
    const dim3 grid{grid_xy.x, grid_xy.y, unsigned(nb)};
    kernel<<<grid, kBlockThreads, kSmemBytes, stream>>>(M, N, K, A, lda, stride_a, B, ldb, stride_b, C,
                                                   ldc, stride_c, b0, store_pairs, ep);
    Status s = launch_status("gemm_bf16_tc_kernel");
    if (!s.ok()) return s;
  }
  return ok_status();
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool bf16_tensor_core_applies(int64_t batch, const bf16* A, int64_t lda, int64_t stride_a,
                              const bf16* B, int64_t ldb, int64_t stride_b) {
  return aligned16(A) && aligned16(B) && lda % 8 == 0 && ldb % 8 == 0 &&
         (batch <= 1 || (stride_a % 8 == 0 && stride_b % 8 == 0));
}

Status gemm_bf16_tensor_core(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N,
                             int64_t K, const bf16* A, int64_t lda, int64_t stride_a,
                             const bf16* B, int64_t ldb, int64_t stride_b, bf16* C, int64_t ldc,
                             int64_t stride_c, const DeviceEpilogue<bf16>& ep,
                             cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0) return ok_status();
  Status s = check_tile_grid("gemm_bf16_tc_kernel", M, N, kBM, kBN);
  if (!s.ok()) return s;
  // A stored [M, K] (not transposed) is K-major; B is K-major when stored [N, K] (transposed).
  const bool a_k_major = !trans_a, b_k_major = trans_b;
  if (a_k_major && b_k_major)
    return launch<true, true>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
  if (a_k_major)
    return launch<true, false>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
  if (b_k_major)
    return launch<false, true>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
  return launch<false, false>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
}

}  // namespace shallow::cuda
