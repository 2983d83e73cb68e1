#pragma once
// Pieces shared by the fused attention kernels (attention_simt.cu, attention_mma.cu): the tile
// sizes, how an operand's rows are found, and the copy of a tile of rows into shared memory.
// Device code only (nvcc).
#include <cstdint>
#include <string>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda::attention_detail {

// Query rows per block and keys per tile, in every kernel.
constexpr int kRows = 64;
constexpr int kKeys = 64;

__host__ __device__ inline int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

// An operand as the kernels read it: its base pointer, batch layout and row stride, and
// whether every row start is 16-byte aligned with D a whole number of 16-byte chunks (then a
// row is copied in 16-byte loads).
template <class T>
struct Source {
  const T* data;
  BatchLayout layout;
  int64_t ld;
  bool vec;
};

template <class T>
Source<T> source_of(const AttentionOperand<T>& op, int D) {
  constexpr int per = 16 / int(sizeof(T));
  const bool aligned = reinterpret_cast<uintptr_t>(op.data) % 16 == 0 && D % per == 0 &&
                       op.ld % per == 0 && op.layout.outer_stride % per == 0 &&
                       op.layout.inner_stride % per == 0;
  return {op.data, op.layout, op.ld, aligned};
}

// A contiguous [batch, L, D] buffer (out, grad_out) as a Source.
template <class T>
Source<T> contiguous_source(const T* data, int64_t L, int D) {
  AttentionOperand<T> op;
  op.data = data;
  op.layout = BatchLayout{1, L * D, 0};
  op.ld = D;
  return source_of(op, D);
}

// Shared-memory element types: float, or the raw bits of a bf16 (the tensor-core path).
template <class S, class T>
__device__ inline S to_shared(T v) {
  if constexpr (std::is_same_v<S, uint16_t>) return v.bits;  // T is bf16
  else return float(widen(v));
}

template <class S>
__device__ inline S shared_zero() { return S(0); }

// Copies rows [row0, row0 + tile_rows) of batch entry b of `src` into dst (row r at
// dst + r * dst_ld, or at dst + c * dst_ld + r when `transpose`), converted to S. Rows at or
// past L, and columns from D up to `width`, are written as zeros so that the tile products
// need no bounds checks. All threads of the block take part; the caller synchronizes.
template <class S, class T>
__device__ void load_tile(S* dst, int dst_ld, int tile_rows, int width, const Source<T>& src,
                          int64_t b, int64_t row0, int64_t L, int D, bool transpose = false) {
  const T* base = src.data + src.layout.offset(b);
  auto put = [&](int r, int c, S v) {
    if (transpose) dst[c * dst_ld + r] = v;
    else dst[r * dst_ld + c] = v;
  };
  if (src.vec) {
    constexpr int per = 16 / int(sizeof(T));
    const int chunks = D / per;
    for (int idx = threadIdx.x; idx < tile_rows * chunks; idx += blockDim.x) {
      const int r = idx / chunks, c0 = (idx % chunks) * per;
      const int64_t row = row0 + r;
      if (row < L) {
        const uint4 raw = *reinterpret_cast<const uint4*>(base + row * src.ld + c0);
        const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int e = 0; e < per; ++e) put(r, c0 + e, to_shared<S>(v[e]));
      } else {
#pragma unroll
        for (int e = 0; e < per; ++e) put(r, c0 + e, shared_zero<S>());
      }
    }
  } else {
    for (int idx = threadIdx.x; idx < tile_rows * D; idx += blockDim.x) {
      const int r = idx / D, c = idx % D;
      const int64_t row = row0 + r;
      put(r, c, row < L ? to_shared<S>(base[row * src.ld + c]) : shared_zero<S>());
    }
  }
  const int pad = width - D;
  for (int idx = threadIdx.x; idx < tile_rows * pad; idx += blockDim.x)
    put(idx / pad, D + idx % pad, shared_zero<S>());
}

// The sizes and options every kernel takes by value.
struct Problem {
  int64_t batch, Lq, Lk;
  int D;
  float scale;
  bool causal;
};

template <class T>
Problem problem_of(const FusedAttentionArgs<T>& a) {
  return {a.batch, a.Lq, a.Lk, a.D, a.scale, a.causal};
}

// Whether query row `row` may attend key `col`.
__device__ inline bool attends(const Problem& p, int64_t row, int64_t col) {
  return col < p.Lk && !(p.causal && col > row);
}

// Blocks are numbered by blockIdx.x alone (2^31 - 1 at most); callers skip empty grids.
inline Status check_grid(int64_t blocks, const char* name) {
  if (blocks > 0x7fffffff)
    return Status{std::string("launch of ") + name, "more than 2^31 - 1 blocks (batch * tiles)"};
  return ok_status();
}

// Shared memory beyond the default 48 KiB must be asked for per kernel.
template <class Kernel>
Status allow_shared(Kernel kernel, size_t bytes, const char* name) {
  if (bytes <= 48 * 1024) return ok_status();
  const cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  if (e != cudaSuccess)
    return Status{std::string("cudaFuncSetAttribute for ") + name, cudaGetErrorString(e)};
  return ok_status();
}

#define SH_RETURN_IF_FAILED(expr)    \
  do {                               \
    ::shallow::cuda::Status sh_st_ = (expr); \
    if (!sh_st_.ok()) return sh_st_; \
  } while (0)

// One past the last key that any query row before i1 may attend.
__device__ inline int64_t key_end(int64_t Lk, bool causal, int64_t i1) {
  return causal && i1 < Lk ? i1 : Lk;
}

}  // namespace shallow::cuda::attention_detail
