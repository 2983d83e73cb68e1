#include "kernels/cuda/binary.h"

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
    out[i] = apply(op, a[oa], b[ob]);
  }
}

// Both operands contiguous over the output (a_step/b_step 1), or one of them a single value
// (step 0): no index arithmetic.
template <class T>
__global__ void binary_flat_kernel(BinaryOp op, int64_t n, const T* __restrict__ a, int a_step,
                                   const T* __restrict__ b, int b_step, T* __restrict__ out) {
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    out[i] = apply(op, a[i * a_step], b[i * b_step]);
}

// The same for float with both operands contiguous and 16-byte aligned.
__global__ void binary_vec4_kernel(BinaryOp op, int64_t n4, const float4* __restrict__ a,
                                   const float4* __restrict__ b, float4* __restrict__ out) {
  for (int64_t i = global_thread(); i < n4; i += grid_threads()) {
    const float4 x = a[i], y = b[i];
    out[i] = make_float4(apply(op, x.x, y.x), apply(op, x.y, y.y), apply(op, x.z, y.z),
                         apply(op, x.w, y.w));
  }
}

// 1 when strides walk `shape` in row-major order, 0 when they are all 0, -1 otherwise.
int flat_step(int ndim, const int64_t* shape, const int64_t* strides) {
  bool all_zero = true, row_major = true;
  int64_t expected = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (strides[d] != 0) all_zero = false;
    if (strides[d] != expected) row_major = false;
    expected *= shape[d];
  }
  return row_major ? 1 : (all_zero ? 0 : -1);
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
  const int sa = flat_step(ndim, shape, a_strides), sb = flat_step(ndim, shape, b_strides);
  if (sa >= 0 && sb >= 0) {
    if constexpr (std::is_same_v<T, float>) {
      if (sa == 1 && sb == 1 && aligned16(a) && aligned16(b) && aligned16(out) && n % 4 == 0) {
        binary_vec4_kernel<<<blocks_for(n / 4), kThreads, 0, stream>>>(
            op, n / 4, reinterpret_cast<const float4*>(a), reinterpret_cast<const float4*>(b),
            reinterpret_cast<float4*>(out));
        return launch_status("binary_vec4_kernel");
      }
    }
    binary_flat_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, n, a, sa, b, sb, out);
    return launch_status("binary_flat_kernel");
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

}  // namespace shallow::cuda
