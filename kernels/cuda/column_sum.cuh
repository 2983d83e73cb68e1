#pragma once
// Sums down columns by one block of kColumnSumThreads threads: the block takes C neighbouring
// columns (8 or 32), each of its 1024 / C row lanes adds every (1024 / C)-th row of its column,
// and column_sum_total adds the lanes' sums in a fixed order (so the result does not depend on
// the launch). Groups of 8 columns give a 1024-column sum 128 blocks, where 32 left most of an
// H100's 132 multiprocessors idle; a warp still reads whole 32-byte sectors (4 rows of 8
// floats). Groups of 32 suit few rows (fewer than 128), which 128 lanes would leave idle.
// Device code only (nvcc).
#include <cstdint>

namespace shallow::cuda {

constexpr int kColumnSumThreads = 1024;

template <int C>
struct ColumnSum {
  static_assert(C == 8 || C == 16 || C == 32, "a warp holds whole groups of C columns");
  static constexpr int kLanes = kColumnSumThreads / C;
  static constexpr int kParts = kColumnSumThreads / 32 * C;  // shared entries total() needs

  // This thread's column (0 .. C) and row lane (0 .. kLanes).
  __device__ static int col() { return threadIdx.x % C; }
  __device__ static int lane() { return threadIdx.x / C; }

  // The total of every lane's `s` for this thread's column, valid in the threads with
  // threadIdx.x < C (thread c holds column c). `part` is shared memory of kParts entries.
  // Every thread of the block calls it.
  template <class A>
  __device__ static A total(A s, A* part) {
#pragma unroll
    for (int apart = C; apart < 32; apart *= 2)  // the lanes of one warp hold the same columns
      s += __shfl_xor_sync(0xffffffffu, s, apart);
    const int warp = threadIdx.x / 32, in_warp = threadIdx.x % 32;
    __syncthreads();  // earlier readers of part are done
    if (in_warp < C) part[warp * C + in_warp] = s;
    __syncthreads();
    A t = 0;
    if (threadIdx.x < C)
      for (int w = 0; w < kColumnSumThreads / 32; ++w) t += part[w * C + threadIdx.x];
    return t;
  }
};

// Columns per block for sums over `rows` rows: 8 where there are rows for 128 lanes.
inline int column_sum_width(int64_t rows) { return rows >= 128 ? 8 : 32; }

}  // namespace shallow::cuda
