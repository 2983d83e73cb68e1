#include "kernels/cpu/binary.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cpu/parallel.h"

namespace shallow::cpu {
namespace {

// The type a stored value is computed in: bf16/f16 in f32, the others as they are.
template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, bf16> || std::is_same_v<T, f16>, float, T>;

// The inner loop, written once per op so that the compiler vectorizes the stride-1 case. T is
// the stored type; f computes on its widened form (bf16/f16 in f32, each result rounded once).
template <class T, class F>
void run(int ndim, const int64_t* shape, const T* a_in, const int64_t* sa, const T* b_in,
         const int64_t* sb, T* out, F f) {
  auto a = [a_in](int64_t i) { return compute_t<T>(a_in[i]); };
  auto b = [b_in](int64_t i) { return compute_t<T>(b_in[i]); };
  if (ndim == 0) {
    out[0] = T(f(a(0), b(0)));
    return;
  }
  const int64_t inner = shape[ndim - 1];
  int64_t rows = 1;
  for (int d = 0; d + 1 < ndim; ++d) rows *= shape[d];
  if (rows == 0 || inner == 0) return;
  const int64_t ia = sa[ndim - 1], ib = sb[ndim - 1];
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t oa = 0, ob = 0, rem = r;
      for (int d = ndim - 2; d >= 0; --d) {
        int64_t i = rem % shape[d];
        rem /= shape[d];
        oa += i * sa[d];
        ob += i * sb[d];
      }
      T* po = out + r * inner;
      if (ia == 1 && ib == 1) {
        for (int64_t i = 0; i < inner; ++i) po[i] = T(f(a(oa + i), b(ob + i)));
      } else if (ia == 1 && ib == 0) {
        const auto vb = b(ob);
        for (int64_t i = 0; i < inner; ++i) po[i] = T(f(a(oa + i), vb));
      } else if (ia == 0 && ib == 1) {
        const auto va = a(oa);
        for (int64_t i = 0; i < inner; ++i) po[i] = T(f(va, b(ob + i)));
      } else {
        for (int64_t i = 0; i < inner; ++i) po[i] = T(f(a(oa + i * ia), b(ob + i * ib)));
      }
    }
  });
}

}  // namespace

template <class S>
void binary(BinaryOp op, int ndim, const int64_t* shape, const S* a, const int64_t* sa,
            const S* b, const int64_t* sb, S* out) {
  using T = compute_t<S>;
  switch (op) {
    case BinaryOp::add: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return x + y; });
    case BinaryOp::sub: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return x - y; });
    case BinaryOp::mul: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return x * y; });
    case BinaryOp::div: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return x / y; });
    case BinaryOp::pow: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return std::pow(x, y); });
    case BinaryOp::maximum:
      return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return (x != x || x > y) ? x : y; });
    case BinaryOp::minimum:
      return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return (x != x || x < y) ? x : y; });
    case BinaryOp::eq: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return T(x == y); });
    case BinaryOp::ne: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return T(x != y); });
    case BinaryOp::lt: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return T(x < y); });
    case BinaryOp::le: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return T(x <= y); });
    case BinaryOp::gt: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return T(x > y); });
    case BinaryOp::ge: return run(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return T(x >= y); });
  }
}

template void binary<float>(BinaryOp, int, const int64_t*, const float*, const int64_t*,
                            const float*, const int64_t*, float*);
template void binary<double>(BinaryOp, int, const int64_t*, const double*, const int64_t*,
                             const double*, const int64_t*, double*);
template void binary<bf16>(BinaryOp, int, const int64_t*, const bf16*, const int64_t*,
                           const bf16*, const int64_t*, bf16*);
template void binary<f16>(BinaryOp, int, const int64_t*, const f16*, const int64_t*, const f16*,
                          const int64_t*, f16*);

}  // namespace shallow::cpu
