// The GEMM epilogue as a pass of its own, for products computed by cuBLAS: C = act(C + bias)
// in place over a batch of M x N matrices (row stride ldc, batch stride stride_c). The kernels
// are templated on the activation (the host picks one per call), so the per-element work is the
// bias add and the activation itself. Where rows are 16-byte aligned and N a multiple of the
// vector width, each thread takes 16-byte chunks of C (and of a per-column bias) and walks a
// grid sized to the GPU; otherwise one element per thread.
#include <algorithm>

#include "kernels/cuda/gemm_kernels.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

template <class T>
using acc_of = typename DeviceEpilogue<T>::Acc;

// act(c + bias), rounded once; `bias_value` is read only when there is a bias. The same
// arithmetic as DeviceEpilogue::finish with alpha = beta = 1.
template <class T, GemmActivation kAct>
__device__ inline T bias_act(acc_of<T> c, bool has_bias, acc_of<T> bias_value) {
  acc_of<T> v = c;
  if (has_bias) v += bias_value;
  return convert<T>(apply_activation_for<T>(kAct, v));
}

// One element per thread: the grid's y axis walks the batch * M rows (one division per row),
// x the columns (consecutive threads, consecutive columns).
template <class T, GemmActivation kAct>
__global__ void gemm_bias_act_kernel(int64_t rows, int64_t M, int64_t N, T* C, int64_t ldc,
                                     int64_t stride_c, const T* bias, bool bias_per_row) {
  using Acc = acc_of<T>;
  const bool has_bias = bias != nullptr;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int64_t b = r / M, row = r - b * M;
    T* c = C + b * stride_c + row * ldc;
    const Acc row_bias = has_bias && bias_per_row ? Acc(widen(bias[row])) : Acc(0);
    for (int64_t col = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; col < N;
         col += int64_t(gridDim.x) * blockDim.x) {
      const Acc bv = has_bias && !bias_per_row ? Acc(widen(bias[col])) : row_bias;
      c[col] = bias_act<T, kAct>(Acc(widen(c[col])), has_bias, bv);
    }
  }
}

// Where the next chunk of a grid-stride walk over the batch * M * nv chunks of C lies: chunk
// v (of nv per row) of row `row` of matrix b. Moving by a fixed step adds precomputed parts
// and carries, so the walk divides only once per thread, not once per chunk.
struct ChunkCursor {
  int64_t b, row, v;
};

__device__ inline ChunkCursor chunk_at(int64_t i, int64_t M, int64_t nv) {
  const int64_t r = i / nv, b = r / M;
  return {b, r - b * M, i - r * nv};
}

// Moves `at` by `step` chunks, given as chunk_at(step).
__device__ inline void advance(ChunkCursor& at, const ChunkCursor& step, int64_t M, int64_t nv) {
  at.v += step.v;  // step.v < nv, at.v < nv: at most one carry
  at.row += step.row;
  at.b += step.b;
  if (at.v >= nv) {
    at.v -= nv;
    ++at.row;
  }
  if (at.row >= M) {  // at most 2M - 1 before: one carry
    at.row -= M;
    ++at.b;
  }
}

// 16 bytes (kWidth elements) at a time; N, ldc, stride_c multiples of kWidth, C and a
// per-column bias 16-byte aligned. Consecutive threads take consecutive chunks of a row.
template <class T, GemmActivation kAct>
__global__ void __launch_bounds__(kThreads)
    gemm_bias_act_vec_kernel(int64_t batch, int64_t M, int64_t nv, T* C, int64_t ldc,
                             int64_t stride_c, const T* bias, bool bias_per_row) {
  using Acc = acc_of<T>;
  constexpr int kWidth = 16 / sizeof(T);
  const bool has_bias = bias != nullptr;
  const bool col_bias = has_bias && !bias_per_row;
  const uint4* bias4 = reinterpret_cast<const uint4*>(bias);
  const ChunkCursor step = chunk_at(grid_threads(), M, nv);
  ChunkCursor at = chunk_at(global_thread(), M, nv);
  for (; at.b < batch; advance(at, step, M, nv)) {
    uint4* c = reinterpret_cast<uint4*>(C + at.b * stride_c + at.row * ldc) + at.v;
    uint4 raw = *c;
    uint4 bias_raw = make_uint4(0, 0, 0, 0);
    if (col_bias) bias_raw = bias4[at.v];
    const Acc row_bias = has_bias && bias_per_row ? Acc(widen(bias[at.row])) : Acc(0);
    T* e = reinterpret_cast<T*>(&raw);
    const T* be = reinterpret_cast<const T*>(&bias_raw);
#pragma unroll
    for (int k = 0; k < kWidth; ++k)
      e[k] = bias_act<T, kAct>(Acc(widen(e[k])), has_bias, col_bias ? Acc(widen(be[k])) : row_bias);
    *c = raw;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Blocks of the vector kernel: as many as the GPU holds at once (a few per multiprocessor),
// never more than the chunks need.
// The occupancy is asked once per kernel: it depends on the kernel and the architecture, and
// only sizes the grid (any size gives the same result).
template <class T, GemmActivation kAct>
int blocks_per_multiprocessor() {
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemm_bias_act_vec_kernel<T, kAct>,
                                                    kThreads, 0) != cudaSuccess ||
      per_sm < 1) {
    cudaGetLastError();
    per_sm = 4;
  }
  return per_sm;
}

template <class T, GemmActivation kAct>
int64_t vec_blocks(int64_t chunks) {
  static const int per_sm = blocks_per_multiprocessor<T, kAct>();
  const int64_t resident = int64_t(multiprocessors()) * per_sm;
  return std::max<int64_t>(1, std::min(resident, (chunks + kThreads - 1) / kThreads));
}

template <class T, GemmActivation kAct>
Status launch_bias_act(int64_t batch, int64_t M, int64_t N, T* C, int64_t ldc, int64_t stride_c,
                       const T* bias, bool bias_per_row, cudaStream_t stream) {
  constexpr int64_t w = 16 / sizeof(T);
  const bool vec = N % w == 0 && ldc % w == 0 && (batch == 1 || stride_c % w == 0) &&
                   aligned16(C) && (bias == nullptr || bias_per_row || aligned16(bias));
  if (vec) {
    const int64_t nv = N / w;
    const int64_t blocks = vec_blocks<T, kAct>(batch * M * nv);
    gemm_bias_act_vec_kernel<T, kAct><<<unsigned(blocks), kThreads, 0, stream>>>(
        batch, M, nv, C, ldc, stride_c, bias, bias_per_row);
    return launch_status("gemm_bias_act_vec_kernel");
  }
  const int64_t rows = batch * M;
  const unsigned bx = unsigned(std::min<int64_t>((N + kThreads - 1) / kThreads, 65535));
  const unsigned by = unsigned(rows < 65535 ? rows : 65535);
  gemm_bias_act_kernel<T, kAct><<<dim3(bx, by), kThreads, 0, stream>>>(rows, M, N, C, ldc,
                                                                       stride_c, bias, bias_per_row);
  return launch_status("gemm_bias_act_kernel");
}

}  // namespace

template <class T>
Status gemm_bias_act(int64_t batch, int64_t M, int64_t N, T* C, int64_t ldc, int64_t stride_c,
                     const T* bias, bool bias_per_row, GemmActivation act, cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0 || (bias == nullptr && act == GemmActivation::none))
    return ok_status();
  switch (act) {
    case GemmActivation::none:
      return launch_bias_act<T, GemmActivation::none>(batch, M, N, C, ldc, stride_c, bias,
                                                      bias_per_row, stream);
    case GemmActivation::relu:
      return launch_bias_act<T, GemmActivation::relu>(batch, M, N, C, ldc, stride_c, bias,
                                                      bias_per_row, stream);
    case GemmActivation::gelu:
      return launch_bias_act<T, GemmActivation::gelu>(batch, M, N, C, ldc, stride_c, bias,
                                                      bias_per_row, stream);
    case GemmActivation::gelu_tanh:
      return launch_bias_act<T, GemmActivation::gelu_tanh>(batch, M, N, C, ldc, stride_c, bias,
                                                           bias_per_row, stream);
    case GemmActivation::quick_gelu:
      return launch_bias_act<T, GemmActivation::quick_gelu>(batch, M, N, C, ldc, stride_c, bias,
                                                            bias_per_row, stream);
  }
  return Status{"gemm_bias_act", "unknown activation"};
}

#define SH_GEMM_BIAS_ACT_INSTANTIATE(T)                                                       \
  template Status gemm_bias_act<T>(int64_t, int64_t, int64_t, T*, int64_t, int64_t, const T*, \
                                   bool, GemmActivation, cudaStream_t);
SH_GEMM_BIAS_ACT_INSTANTIATE(float)
SH_GEMM_BIAS_ACT_INSTANTIATE(double)
SH_GEMM_BIAS_ACT_INSTANTIATE(bf16)

}  // namespace shallow::cuda
