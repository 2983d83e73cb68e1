// bf16 GEMM for Hopper (sm_90a): warpgroup MMA (wgmma) fed by TMA, f32 accumulation.
// C = epilogue(op(A) op(B)), the contract of gemm_bf16_tensor_core (gemm_kernels.cuh).
//
// Tiling. A block of 384 threads (3 warpgroups) computes a 128 x 256 tile of C, walking K in
// slices of 64. Warpgroup 0 is the producer: one of its threads issues the TMA copies of each
// slice (A: 128 x 64, B: 64 x 256) into a ring of kStages stages of shared memory. Warpgroups
// 1 and 2 are the consumers: each owns 64 rows of the tile and multiplies them by the whole
// slice of B with four wgmma m64n256k16 (128 f32 accumulators per thread). The producer gives
// its registers away (setmaxnreg) so the consumers can hold theirs. Optionally (the cluster
// setting, bf16_wgmma_cluster) blocks run in clusters of two on vertically adjacent tiles,
// which share B: each loads half of B's slice and TMA multicasts it to both (a third less
// traffic from L2). The grid holds as many clusters as fit at once, each walking its share of
// the tiles (persistent), so the loads of a tile's first slices overlap the epilogue of the one
// before. The epilogue (alpha, beta C, bias, activation) works on the accumulators in place,
// each step a uniform branch around an unrolled loop, then stores pairs of bf16.
//
// Synchronization, per stage: a "full" barrier (the producer's arrival with the byte count,
// completed by the TMA transactions) and an "empty" barrier (one arrival per consumer warp of
// both CTAs of the cluster once its wgmma have read the stage). Round r of stage s is phase r of both barriers, so a
// consumer waits for parity r % 2 of "full" and the producer, from round 1 on, for parity
// (r - 1) % 2 of "empty". A consumer keeps one slice's MMAs in flight while it issues the
// next slice's, and frees a stage once the MMAs that read it are done.
//
// Layouts. TMA writes each operand as stored in global memory, in rows of 64 bf16 (128 bytes)
// with the 128-byte swizzle, and wgmma reads either orientation from there:
//   K-major (A stored [M, K], B stored [N, K]): one box of rows x 64 K; the descriptor's
//     stride byte offset is 1024 (8 rows of 128 bytes), and each 16-deep K step starts 32
//     bytes further into the rows;
//   M/N-major (A stored [K, M], B stored [K, N]): boxes of 64 K rows x 64 M (or N) columns,
//     8 KiB each, side by side; stride byte offset 1024 (8 K rows), leading byte offset 8192
//     (the next 64 columns), each K step 16 rows = 2048 bytes further; the instruction's
//     transpose flag is set.
// Every tile starts on a 1024-byte boundary (the swizzle pattern's period), so the
// descriptors' base offset is 0. TMA fills the parts of a box outside the matrix with zeros,
// which is how the M, N and K edges are handled; the epilogue's stores are guarded.
//
// Batches. Each operand has a 3-D tensor map (columns, rows, matrices); an operand shared by
// every batch (stride 0) or a single matrix has one matrix in its map and is read at index 0.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <atomic>
#include <type_traits>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/gemm_wgmma_ptx.cuh"
#include "kernels/cuda/launch.cuh"

// The kernel's body exists only in the sm_90a image; other images get an empty kernel, and
// the host never launches it there (bf16_wgmma_applies reads the marker below).
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SH_WGMMA_DEVICE_CODE 1
#else
#define SH_WGMMA_DEVICE_CODE 0
#endif

namespace shallow::cuda {
namespace {

constexpr int kBM = 128, kBN = 256, kBK = 64, kStages = 4;
constexpr int kConsumers = 2;                              // warpgroups, 64 rows each
constexpr int kBlockThreads = 128 * (1 + kConsumers);      // + the producer warpgroup
constexpr uint32_t kABytes = kBM * kBK * 2;                // 16 KiB
constexpr uint32_t kBBytes = kBN * kBK * 2;                // 32 KiB
constexpr uint32_t kStageBytes = kABytes + kBBytes;        // 48 KiB
constexpr uint32_t kBarrierBytes = 2 * kStages * 8;
// The ring, its barriers, and room to align the ring to 1024 bytes.
constexpr int kSmemBytes = int(kStages * kStageBytes + kBarrierBytes + 1024);
static_assert(kSmemBytes <= 227 * 1024, "fits an H100's shared memory per block");
constexpr int kProducerRegisters = 40, kConsumerRegisters = 232;
static_assert(128 * kProducerRegisters + 128 * kConsumers * kConsumerRegisters <= 65536,
              "the register file holds every warpgroup");

}  // namespace

// 1 in the image compiled for sm_90a, 0 in the others: which image the device loaded.
#if SH_WGMMA_DEVICE_CODE
__device__ int g_bf16_wgmma_built = 1;
#else
__device__ int g_bf16_wgmma_built = 0;
#endif

namespace {

#if SH_WGMMA_DEVICE_CODE
// One 64 x 64 box of an M/N-major operand.
constexpr uint32_t kBoxBytes = 64 * 64 * 2;

struct TileCoord {
  int64_t batch, m, n;  // batch index, first row of the cluster's tiles, first column
};

// Item `index` of the schedule (a cluster's kCluster tiles stacked vertically: rows
// [m, m + 128 kCluster), columns [n, n + 256)): batch after batch; inside one, groups of 4
// item rows are walked down before moving right, so the clusters running together share
// slices of A and B in L2.
template <int kCluster>
__device__ inline TileCoord pair_at(int64_t index, int64_t pairs_m, int64_t tiles_n) {
  constexpr int64_t kGroup = 4;
  const int64_t per_batch = pairs_m * tiles_n;
  const int64_t batch = index / per_batch, id = index % per_batch;
  const int64_t per_group = kGroup * tiles_n;
  const int64_t first_m = (id / per_group) * kGroup;
  const int64_t group_rows = pairs_m - first_m < kGroup ? pairs_m - first_m : kGroup;
  const int64_t pair_m = first_m + (id % per_group) % group_rows;
  const int64_t tile_n = (id % per_group) / group_rows;
  return {batch, pair_m * kCluster * kBM, tile_n * kBN};
}

// ---- the epilogue, from a consumer's accumulators: acc[4 j + 2 h + e] is C[row0 + 8 h][col0 +
// 8 j + e] (h, e in {0, 1}, j < 32), the wgmma m64n256 fragment. Each step is one uniform branch
// around a fully unrolled loop, so a plain product pays for none of them and an activation's
// code runs once per tile, not once per element.

// alpha, beta C, bias, activation: ep.finish's order and rounding, in place.
__device__ __forceinline__ void finish_fragment(float (&acc)[128], const DeviceEpilogue<bf16>& ep,
                                                const bf16* c, int64_t ldc, int64_t row0,
                                                int64_t col0, int64_t M, int64_t N) {
  if (ep.alpha != 1.0f) {
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] *= ep.alpha;
  }
  if (ep.beta != 0.0f) {  // C is read only here (beta == 0 overwrites NaN or garbage cleanly)
#pragma unroll
    for (int i = 0; i < 128; ++i) {
      const int64_t row = row0 + 8 * ((i / 2) % 2), col = col0 + 8 * (i / 4) + i % 2;
      if (row < M && col < N) acc[i] += ep.beta * widen(c[row * ldc + col]);
    }
  }
  if (ep.bias != nullptr) {
    if (ep.bias_per_row) {
      const float b0 = row0 < M ? widen(ep.bias[row0]) : 0.0f;
      const float b1 = row0 + 8 < M ? widen(ep.bias[row0 + 8]) : 0.0f;
#pragma unroll
      for (int i = 0; i < 128; ++i) acc[i] += (i / 2) % 2 ? b1 : b0;
    } else {
#pragma unroll
      for (int j = 0; j < 32; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t col = col0 + 8 * j + e;
          const float b = col < N ? widen(ep.bias[col]) : 0.0f;
          acc[4 * j + e] += b;
          acc[4 * j + 2 + e] += b;
        }
      }
    }
  }
  switch (ep.act) {
    case GemmActivation::none: break;
#define SH_APPLY(fn)                                      \
  _Pragma("unroll") for (int i = 0; i < 128; ++i) acc[i] = fn(acc[i]); \
  break;
    case GemmActivation::relu: SH_APPLY(act_relu)
    case GemmActivation::gelu: SH_APPLY(act_gelu)
    case GemmActivation::gelu_tanh: SH_APPLY(act_gelu_tanh_fast)  // rounded to bf16 after
    case GemmActivation::quick_gelu: SH_APPLY(act_quick_gelu_fast)
#undef SH_APPLY
  }
}

// The fragment rounded to bf16 and stored: pairs of columns as one 32-bit store where C's
// layout allows, with no per-element guard when the tile lies inside the matrix.
__device__ __forceinline__ void store_fragment(const float (&acc)[128], bf16* c, int64_t ldc,
                                               int64_t row0, int64_t col0, int64_t M, int64_t N,
                                               bool store_pairs, bool full_columns) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t row = row0 + 8 * h;
    if (row >= M) continue;
    bf16* c_row = c + row * ldc + col0;
    if (store_pairs && full_columns) {
#pragma unroll
      for (int j = 0; j < 32; ++j) {
        const bf16 v0 = convert<bf16>(acc[4 * j + 2 * h]), v1 = convert<bf16>(acc[4 * j + 2 * h + 1]);
        *reinterpret_cast<uint32_t*>(c_row + 8 * j) = uint32_t(v0.bits) | (uint32_t(v1.bits) << 16);
      }
    } else {
#pragma unroll
      for (int j = 0; j < 32; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e)
          if (col0 + 8 * j + e < N) c_row[8 * j + e] = convert<bf16>(acc[4 * j + 2 * h + e]);
      }
    }
  }
}
#endif

// Clusters of kCluster (1 or 2) CTAs on vertically adjacent tiles (the same columns, so the
// same slices of B): with 2, each CTA loads its own slice of A and half of the slice of B,
// which TMA multicasts into both CTAs. A stage of a CTA is thus written by both producers, so
// it is free when the consumers of both CTAs are done with it: each consumer warp arrives on
// the "empty" barrier of both CTAs. The second CTA of a pair past the last row still runs
// every step (its rows are not stored).
//
// Persistent: cluster i computes items i, i + clusters, ... of the schedule. The stage ring
// runs on across tiles (a block-wide count of K slices gives each slice's stage and round),
// so the producer loads the next tile's first slices while the consumers finish the last.
// kAKMajor: A stored [M, K]; kBKMajor: B stored [N, K].
template <int kCluster, bool kAKMajor, bool kBKMajor>
__global__ void __launch_bounds__(kBlockThreads, 1)
gemm_bf16_wgmma_kernel(const __grid_constant__ CUtensorMap map_a,
                       const __grid_constant__ CUtensorMap map_b, int64_t M, int64_t N, int64_t K,
                       int64_t batch, bf16* __restrict__ C, int64_t ldc, int64_t stride_c,
                       bool a_batched, bool b_batched, bool store_pairs, DeviceEpilogue<bf16> ep) {
#if SH_WGMMA_DEVICE_CODE
  extern __shared__ unsigned char smem[];
  const uint32_t ring = (wgmma::shared_address(smem) + 1023u) & ~1023u;
  const uint32_t full_bar = ring + kStages * kStageBytes;  // kStages barriers, then the empties
  const uint32_t empty_bar = full_bar + kStages * 8;

  const int64_t tiles_m = (M + kBM - 1) / kBM, tiles_n = (N + kBN - 1) / kBN;
  const int64_t pairs_m = (tiles_m + kCluster - 1) / kCluster;
  const int64_t pairs = pairs_m * tiles_n * batch;
  const int64_t k_tiles = (K + kBK - 1) / kBK;
  const int64_t cluster = blockIdx.x / kCluster, clusters = gridDim.x / kCluster;
  const uint32_t rank = kCluster > 1 ? wgmma::cluster_rank() : 0;
  const int warpgroup = int(threadIdx.x) / 128;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      wgmma::mbarrier_init(full_bar + 8 * s, 1);
      wgmma::mbarrier_init(empty_bar + 8 * s, kCluster * kConsumers * 4);
    }
    wgmma::fence_barrier_init();
  }
  // Both CTAs' barriers exist before either CTA's copies or arrivals can reach them.
  if constexpr (kCluster > 1) wgmma::cluster_sync(); else __syncthreads();

  // K slices handled so far by this block: slice `it` uses stage it % kStages in round
  // it / kStages (32 bits: wrapping keeps both, 2^32 being a multiple of 2 kStages).
  uint32_t it = 0;

  if (warpgroup == 0) {
    // ---- producer
    wgmma::release_registers<kProducerRegisters>();
    if (threadIdx.x == 0 && k_tiles > 0) {
      wgmma::prefetch_tensor_map(&map_a);
      wgmma::prefetch_tensor_map(&map_b);
      for (int64_t p = cluster; p < pairs; p += clusters) {
        const TileCoord at = pair_at<kCluster>(p, pairs_m, tiles_n);
        const int64_t m_own = at.m + int64_t(rank) * kBM;
        const int32_t ba = a_batched ? int32_t(at.batch) : 0, bb = b_batched ? int32_t(at.batch) : 0;
        const int32_t m0 = int32_t(m_own), n0 = int32_t(at.n);
        // Boxes wholly past the matrix edge are not loaded. Their part of the stage keeps
        // older values, which reach only rows or columns of the product that are never
        // stored. (Boxes partly outside are zero-filled.) B is loaded in boxes of 64 (N-major)
        // or 256 / kCluster rows (K-major, a CTA's share of the slice); all CTAs count the same.
        const int a_boxes = m_own >= M ? 0
                            : kAKMajor ? 1
                                       : int(min(int64_t(kBM / 64), (M - m_own + 63) / 64));
        constexpr int kBBox = kBKMajor ? kBN / kCluster : 64;  // B box width (N)
        constexpr uint32_t kBBoxBytes = kBBox * kBK * 2;
        const int b_boxes = int(min(int64_t(kBN / kBBox), (N - at.n + kBBox - 1) / kBBox));
        const uint32_t bytes =
            (kAKMajor ? a_boxes * kABytes : a_boxes * kBoxBytes) + b_boxes * kBBoxBytes;
        for (int64_t kt = 0; kt < k_tiles; ++kt, ++it) {
          const uint32_t s = it % kStages, round = it / kStages;
          if (round > 0) wgmma::mbarrier_wait(empty_bar + 8 * s, (round - 1) & 1);
          const uint32_t full = full_bar + 8 * s;
          wgmma::mbarrier_arrive_expect_tx(full, bytes);
          const uint32_t a_dst = ring + s * kStageBytes, b_dst = a_dst + kABytes;
          const int32_t k0 = int32_t(kt * kBK);
          if constexpr (kAKMajor) {
            if (a_boxes > 0) wgmma::tma_load_3d(a_dst, &map_a, full, k0, m0, ba);
          } else {
            for (int c = 0; c < a_boxes; ++c)
              wgmma::tma_load_3d(a_dst + c * kBoxBytes, &map_a, full, m0 + 64 * c, k0, ba);
          }
          // This CTA's share of B's boxes: box c goes from CTA c % kCluster to all of them.
          for (int c = int(rank); c < b_boxes; c += kCluster) {
            const uint32_t dst = b_dst + c * kBBoxBytes;
            const int32_t b0 = kBKMajor ? k0 : n0 + kBBox * c, b1 = kBKMajor ? n0 + kBBox * c : k0;
            if constexpr (kCluster > 1)
              wgmma::tma_load_3d_multicast(dst, &map_b, full, b0, b1, bb, (1u << kCluster) - 1);
            else
              wgmma::tma_load_3d(dst, &map_b, full, b0, b1, bb);
          }
        }
      }
    }
  } else {
    // ---- consumers
    wgmma::claim_registers<kConsumerRegisters>();
    const int consumer = warpgroup - 1;  // rows [64 consumer, 64 consumer + 64) of each tile
    const int t = int(threadIdx.x) % 128, warp = t / 32, lane = t % 32;

    // Descriptor offsets inside a stage. A: K-major rows of the consumer start 64 rows (8 KiB)
    // in; M-major, its 64 rows are the consumer's box. Both layouts put them 8 KiB apart.
    constexpr uint32_t kKStepA = kAKMajor ? 32 : 2048, kKStepB = kBKMajor ? 32 : 2048;
    const uint32_t a_offset = uint32_t(consumer) * 8192;
    constexpr uint32_t kLeadA = kAKMajor ? 16 : kBoxBytes, kLeadB = kBKMajor ? 16 : kBoxBytes;
    // A stage is released on the "empty" barriers of every CTA of the cluster.
    auto release = [&](uint32_t stage) {
      if (lane == 0) {
        const uint32_t bar = empty_bar + 8 * stage;
        if constexpr (kCluster > 1) {
#pragma unroll
          for (int r = 0; r < kCluster; ++r)
            wgmma::mbarrier_arrive_cluster(wgmma::cluster_address(bar, uint32_t(r)));
        } else {
          wgmma::mbarrier_arrive(bar);
        }
      }
    };

    float acc[128];
    for (int64_t p = cluster; p < pairs; p += clusters) {
#pragma unroll
      for (int i = 0; i < 128; ++i) acc[i] = 0.0f;

      for (int64_t kt = 0; kt < k_tiles; ++kt, ++it) {
        const uint32_t s = it % kStages;
        wgmma::mbarrier_wait(full_bar + 8 * s, (it / kStages) & 1);
        const uint32_t a_tile = ring + s * kStageBytes + a_offset;
        const uint32_t b_tile = ring + s * kStageBytes + kABytes;
        wgmma::fence();
#pragma unroll
        for (int k = 0; k < kBK / 16; ++k) {
          const uint64_t da = wgmma::matrix_descriptor(a_tile + k * kKStepA, kLeadA, 1024);
          const uint64_t db = wgmma::matrix_descriptor(b_tile + k * kKStepB, kLeadB, 1024);
          wgmma::mma_m64n256k16<kAKMajor ? 0 : 1, kBKMajor ? 0 : 1>(acc, da, db);
        }
        wgmma::commit_group();
        // One group stays in flight: once the previous slice's group is done, its stage is
        // free (this warp's part of those MMAs has finished reading it).
        wgmma::wait_group<1>();
        if (kt > 0) release((it - 1) % kStages);
      }
      wgmma::wait_group<0>();
#pragma unroll
      for (int i = 0; i < 128; ++i) wgmma::pin(acc[i]);
      if (k_tiles > 0) release((it - 1) % kStages);

      // ---- epilogue: straight from the accumulators, guarded at the matrix edges
      const TileCoord at = pair_at<kCluster>(p, pairs_m, tiles_n);
      const int64_t m_own = at.m + int64_t(rank) * kBM;
      bf16* c_batch = C + at.batch * stride_c;
      const int64_t row0 = m_own + 64 * consumer + 16 * warp + lane / 4;
      const int64_t col0 = at.n + 2 * (lane % 4);
      finish_fragment(acc, ep, c_batch, ldc, row0, col0, M, N);
      store_fragment(acc, c_batch, ldc, row0, col0, M, N, store_pairs, at.n + kBN <= N);
    }
  }
  // Neither CTA leaves while another may still arrive on its barriers.
  if constexpr (kCluster > 1) wgmma::cluster_sync();
#endif  // SH_WGMMA_DEVICE_CODE
}

// ---- host: tensor maps

// cuTensorMapEncodeTiled from the driver, found once through the runtime (no -lcuda link).
PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      p = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

// The 3-D map of `count` row-major matrices of rows x cols (row stride ld, matrix stride
// `stride` elements), read in boxes of box_rows x 64 columns with the 128-byte swizzle.
Status make_map(CUtensorMap& map, const bf16* base, int64_t rows, int64_t cols, int64_t ld,
                int64_t count, int64_t stride, uint32_t box_rows) {
  PFN_cuTensorMapEncodeTiled_v12000 encode = encode_tiled();
  if (encode == nullptr)
    return Status{"cudaGetDriverEntryPointByVersion", "cuTensorMapEncodeTiled not found"};
  // A single matrix gets a matrix stride of its own extent: never used, but a valid value.
  const int64_t matrix_stride = count > 1 ? stride : rows * ld;
  const cuuint64_t dims[3] = {cuuint64_t(cols), cuuint64_t(rows), cuuint64_t(count)};
  const cuuint64_t strides[2] = {cuuint64_t(ld) * 2, cuuint64_t(matrix_stride) * 2};
  const cuuint32_t box[3] = {64, box_rows, 1};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<bf16*>(base),
                            dims, strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    return Status{"cuTensorMapEncodeTiled", "error " + std::to_string(int(r)) + " for a " +
                                                std::to_string(rows) + " x " +
                                                std::to_string(cols) + " operand (ld " +
                                                std::to_string(ld) + ")"};
  return ok_status();
}

// Whether an operand's layout is one a tensor map describes: rows that do not overlap, matrices
// that do not overlap, byte strides below 2^40.
bool tma_can_read(int64_t rows, int64_t cols, int64_t ld, bool batched, int64_t stride) {
  constexpr int64_t kMaxStride = (int64_t(1) << 39) - 1;  // in bf16 elements
  if (ld < cols || ld > kMaxStride || rows > kMaxStride / ld) return false;  // ld >= cols >= 1
  return !batched || (stride >= rows * ld && stride <= kMaxStride);
}

template <int kCluster, bool kAKMajor, bool kBKMajor>
Status launch(int64_t batch, int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda,
              int64_t stride_a, const bf16* B, int64_t ldb, int64_t stride_b, bf16* C,
              int64_t ldc, int64_t stride_c, const DeviceEpilogue<bf16>& ep, cudaStream_t stream) {
  // Operands shared by every batch (or a single matrix) are mapped as one matrix.
  const bool a_batched = batch > 1 && stride_a != 0, b_batched = batch > 1 && stride_b != 0;
  CUtensorMap map_a{}, map_b{};
  if (K > 0) {  // with K == 0 nothing is loaded (and A, B may hold no element)
    const int64_t a_rows = kAKMajor ? M : K, a_cols = kAKMajor ? K : M;
    const int64_t b_rows = kBKMajor ? N : K, b_cols = kBKMajor ? K : N;
    // Rows or matrices that overlap (views with strides below the extents) go to the mma.sync
    // kernel, which reads any stride; a tensor map refused for anything else is an error.
    if (!tma_can_read(a_rows, a_cols, lda, a_batched, stride_a) ||
        !tma_can_read(b_rows, b_cols, ldb, b_batched, stride_b))
      return gemm_bf16_tensor_core(batch, !kAKMajor, kBKMajor, M, N, K, A, lda, stride_a, B, ldb,
                                   stride_b, C, ldc, stride_c, ep, stream);
    Status s = make_map(map_a, A, a_rows, a_cols, lda, a_batched ? batch : 1, stride_a,
                        kAKMajor ? kBM : 64);
    if (!s.ok()) return s;
    s = make_map(map_b, B, b_rows, b_cols, ldb, b_batched ? batch : 1, stride_b,
                 kBKMajor ? kBN / kCluster : 64);
    if (!s.ok()) return s;
  }
  auto kernel = gemm_bf16_wgmma_kernel<kCluster, kAKMajor, kBKMajor>;
  const bool store_pairs = reinterpret_cast<uintptr_t>(C) % 4 == 0 && ldc % 2 == 0 &&
                           (batch <= 1 || stride_c % 2 == 0);
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute cluster_dim{};
  cluster_dim.id = cudaLaunchAttributeClusterDimension;
  cluster_dim.val.clusterDim.x = kCluster;
  cluster_dim.val.clusterDim.y = 1;
  cluster_dim.val.clusterDim.z = 1;
  config.blockDim = dim3(kBlockThreads);
  config.dynamicSmemBytes = kSmemBytes;
  config.stream = stream;
  config.attrs = &cluster_dim;
  config.numAttrs = kCluster > 1 ? 1 : 0;
  // Once per device: the shared-memory opt-in (above 48 KiB a kernel must ask) and how many
  // clusters fit at once (one block per SM: the ring takes most of its shared memory).
  constexpr int kMaxDevices = 64;
  static std::atomic<int> clusters_that_fit[kMaxDevices];  // 0: not known yet
  int device = 0;
  SH_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  int fit = device < kMaxDevices ? clusters_that_fit[device].load(std::memory_order_acquire) : 0;
  if (fit == 0) {
    SH_CUDA_RETURN_IF_ERROR(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
    int sms = 0;
    SH_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    config.gridDim = dim3(unsigned(sms / kCluster * kCluster));
    if (kCluster == 1) {
      fit = sms;  // one block per SM
    } else if (cudaOccupancyMaxActiveClusters(&fit, kernel, &config) != cudaSuccess || fit < 1) {
      cudaGetLastError();  // the estimate is optional
      fit = sms / kCluster;
    }
    if (device < kMaxDevices) clusters_that_fit[device].store(fit, std::memory_order_release);
  }
  const int64_t pairs = ((M + kBM * kCluster - 1) / (kBM * kCluster)) * ((N + kBN - 1) / kBN) * batch;
  const int64_t clusters = pairs < fit ? pairs : fit;
  config.gridDim = dim3(unsigned(clusters * kCluster));
  SH_CUDA_RETURN_IF_ERROR(cudaLaunchKernelEx(&config, kernel, map_a, map_b, M, N, K, batch, C,
                                             ldc, stride_c, a_batched, b_batched, store_pairs,
                                             ep));
  Status s = launch_status("gemm_bf16_wgmma_kernel");
  if (!s.ok()) return s;
  return ok_status();
}

// Whether the current device is a 9.0 one that loaded the sm_90a image. Found once per
// device (a read of the image's marker), then remembered.
bool device_runs_wgmma() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> known[kMaxDevices];  // 0 unknown, 1 yes, 2 no
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) return false;
  const int k = known[device].load(std::memory_order_acquire);
  if (k != 0) return k == 1;
  bool yes = false;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) == cudaSuccess && prop.major == 9 &&
      prop.minor == 0 && prop.sharedMemPerBlockOptin >= size_t(kSmemBytes) &&
      encode_tiled() != nullptr) {
    int built = 0;
    yes = cudaMemcpyFromSymbol(&built, g_bf16_wgmma_built, sizeof built) == cudaSuccess &&
          built == 1;
  }
  cudaGetLastError();  // a failed query above is an answer, not an error for the next launch
  known[device].store(yes ? 1 : 2, std::memory_order_release);
  return yes;
}

// SHALLOW_CUDA_WGMMA=0 in the environment switches the kernel off for the whole process (the
// mma.sync kernel runs instead); set_bf16_wgmma_allowed() changes it afterwards.
bool allowed_by_environment() {
  const char* v = std::getenv("SHALLOW_CUDA_WGMMA");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

std::atomic<bool> g_wgmma_allowed{allowed_by_environment()};

// SHALLOW_CUDA_WGMMA_CLUSTER=1 or 2: CTAs per cluster (2 shares B's slices by multicast).
int cluster_from_environment() {
  const char* v = std::getenv("SHALLOW_CUDA_WGMMA_CLUSTER");
  return v != nullptr && std::strcmp(v, "2") == 0 ? 2 : 1;
}

std::atomic<int> g_wgmma_cluster{cluster_from_environment()};

}  // namespace

void set_bf16_wgmma_allowed(bool allowed) { g_wgmma_allowed.store(allowed); }
bool bf16_wgmma_allowed() { return g_wgmma_allowed.load(); }

void set_bf16_wgmma_cluster(int ctas) { g_wgmma_cluster.store(ctas == 2 ? 2 : 1); }
int bf16_wgmma_cluster() { return g_wgmma_cluster.load(); }

bool bf16_wgmma_applies(int64_t batch, const bf16* A, int64_t lda, int64_t stride_a,
                        const bf16* B, int64_t ldb, int64_t stride_b) {
  // TMA's requirements are the tensor-core kernel's: 16-byte aligned base addresses, row and
  // matrix strides multiples of 16 bytes.
  return bf16_wgmma_allowed() &&
         bf16_tensor_core_applies(batch, A, lda, stride_a, B, ldb, stride_b) &&
         device_runs_wgmma();
}

Status gemm_bf16_wgmma(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N,
                       int64_t K, const bf16* A, int64_t lda, int64_t stride_a, const bf16* B,
                       int64_t ldb, int64_t stride_b, bf16* C, int64_t ldc, int64_t stride_c,
                       const DeviceEpilogue<bf16>& ep, cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0) return ok_status();
  // TMA coordinates are 32-bit: every extent must fit.
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX || batch > INT_MAX)
    return Status{"gemm_bf16_wgmma_kernel", "a size exceeds 2^31 - 1"};
  const bool a_k_major = !trans_a, b_k_major = trans_b;
  auto go = [&](auto cluster) {
    constexpr int kCluster = decltype(cluster)::value;
    if (a_k_major && b_k_major)
      return launch<kCluster, true, true>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
    if (a_k_major)
      return launch<kCluster, true, false>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
    if (b_k_major)
      return launch<kCluster, false, true>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
    return launch<kCluster, false, false>(batch, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, ep, stream);
  };
  if (bf16_wgmma_cluster() == 2) return go(std::integral_constant<int, 2>{});
  return go(std::integral_constant<int, 1>{});
}

}  // namespace shallow::cuda
