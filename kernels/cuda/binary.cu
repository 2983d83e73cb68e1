#include "kernels/cuda/binary.h"

#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/launch.cuh"

namespace shallow::cuda {
namespace {

template <class T>
__device__ inline T apply(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::add: return x + y;
    case BinaryOp::sub: return x - y;
    case BinaryOp::mul: return x * y;
    case BinaryOp::div: return x / y;
    case BinaryOp::pow: return d_pow(x, y);
    case BinaryOp::maximum: return (x != x || x > y) ? x : y;  // NaN wins, as on the CPU
    case BinaryOp::minimum: return (x != x || x < y) ? x : y;
    case BinaryOp::eq: return T(x == y);
    case BinaryOp::ne: return T(x != y);
    case BinaryOp::lt: return T(x < y);
    case BinaryOp::le: return T(x <= y);
    case BinaryOp::gt: return T(x > y);
    case BinaryOp::ge: return T(x >= y);
  }
  return x;
}

struct Layout {
  int ndim;
  int64_t shape[kMaxBinaryDims];
  int64_t a_strides[kMaxBinaryDims];
  int64_t b_strides[kMaxBinaryDims];
};

template <class T>
__global__ void binary_strided_kernel(BinaryOp op, int64_t n, Layout l, const T* __restrict__ a,
                                      const T* __restrict__ b, T* __restrict__ out) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int d = l.ndim - 1; d >= 0; --d) {
      const int64_t k = rem % l.shape[d];
      rem /= l.shape[d];
      oa += k * l.a_strides[d];
      ob += k * l.b_strides[d];
    }
    out[i] = convert<T>(apply(op, widen(a[oa]), widen(b[ob])));
  }
}

// Each operand repeats with a period over the flat output index: n for an operand laid out
// like the output, 1 for a single value, the row length for a bias broadcast over rows. One
// remainder per element instead of a division per dimension.
template <class T>
__global__ void binary_periodic_kernel(BinaryOp op, int64_t n, const T* __restrict__ a,
                                       int64_t a_period, const T* __restrict__ b,
                                       int64_t b_period, T* __restrict__ out) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    const int64_t ia = a_period == n ? i : i % a_period, ib = b_period == n ? i : i % b_period;
    out[i] = convert<T>(apply(op, widen(a[ia]), widen(b[ib])));
  }
}

// The same with 16 bytes per load and store (4 floats, 2 doubles, 8 bf16/f16); every period
// and n are multiples of the vector width and the pointers 16-byte aligned.
template <class T>
__global__ void binary_periodic_vec_kernel(BinaryOp op, int64_t nv, const uint4* __restrict__ a,
                                           int64_t a_period_v, const uint4* __restrict__ b,
                                           int64_t b_period_v, uint4* __restrict__ out) {
  constexpr int kWidth = 16 / sizeof(T);
  for (int64_t i = global_thread(); i < nv; i += grid_threads()) {
    const uint4 ra = a[a_period_v == nv ? i : i % a_period_v];
    const uint4 rb = b[b_period_v == nv ? i : i % b_period_v];
    uint4 ro;
    const T* va = reinterpret_cast<const T*>(&ra);
    const T* vb = reinterpret_cast<const T*>(&rb);
    T* vo = reinterpret_cast<T*>(&ro);
#pragma unroll
    for (int k = 0; k < kWidth; ++k) vo[k] = convert<T>(apply(op, widen(va[k]), widen(vb[k])));
    out[i] = ro;
  }
}

// The period of an operand with these strides over `shape` (see binary_periodic_kernel), or
// -1 when its layout is not periodic: trailing dims must be row-major, leading dims stride 0.
int64_t period_of(int ndim, const int64_t* shape, const int64_t* strides) {
  int64_t period = 1;
  int d = ndim - 1;
  for (; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (strides[d] != period) break;
    period *= shape[d];
  }
  for (; d >= 0; --d)
    if (shape[d] != 1 && strides[d] != 0) return -1;
  return period;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

template <class T>
Status binary(BinaryOp op, int ndim, const int64_t* shape, const T* a, const int64_t* a_strides,
              const T* b, const int64_t* b_strides, T* out, cudaStream_t stream) {
  if (ndim > kMaxBinaryDims)
    return Status{"binary", "more than " + std::to_string(kMaxBinaryDims) + " dims"};
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  if (n == 0) return ok_status();
  const int64_t pa = period_of(ndim, shape, a_strides), pb = period_of(ndim, shape, b_strides);
  if (pa > 0 && pb > 0) {
    constexpr int64_t w = 16 / sizeof(T);
    if (n % w == 0 && pa % w == 0 && pb % w == 0 && aligned16(a) && aligned16(b) &&
        aligned16(out)) {
      binary_periodic_vec_kernel<T><<<blocks_for(n / w), kThreads, 0, stream>>>(
          op, n / w, reinterpret_cast<const uint4*>(a), pa / w, reinterpret_cast<const uint4*>(b),
          pb / w, reinterpret_cast<uint4*>(out));
      return launch_status("binary_periodic_vec_kernel");
    }
    binary_periodic_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, n, a, pa, b, pb, out);
    return launch_status("binary_periodic_kernel");
  }
  Layout l{};
  l.ndim = ndim;
  for (int d = 0; d < ndim; ++d) {
    l.shape[d] = shape[d];
    l.a_strides[d] = a_strides[d];
    l.b_strides[d] = b_strides[d];
  }
  binary_strided_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, n, l, a, b, out);
  return launch_status("binary_strided_kernel");
}

template Status binary<float>(BinaryOp, int, const int64_t*, const float*, const int64_t*,
                              const float*, const int64_t*, float*, cudaStream_t);
template Status binary<double>(BinaryOp, int, const int64_t*, const double*, const int64_t*,
                               const double*, const int64_t*, double*, cudaStream_t);
template Status binary<bf16>(BinaryOp, int, const int64_t*, const bf16*, const int64_t*,
                             const bf16*, const int64_t*, bf16*, cudaStream_t);
template Status binary<f16>(BinaryOp, int, const int64_t*, const f16*, const int64_t*,
                            const f16*, const int64_t*, f16*, cudaStream_t);

}  // namespace shallow::cuda
