#pragma once
// Row reductions in independent running lanes. A plain `s += term(k)` loop is one chain of
// dependent additions (4 cycles each, and the compiler may not reorder float additions to
// vectorize it); kept in running lanes, lane l taking terms l, l + lanes, ..., the additions are
// independent and vectorize, and the order depends on n alone (the same result on any thread
// count). Internal linkage, as fast_math.h: each kernel file gets a copy built with its own
// ISA flags.
#include <algorithm>
#include <cstdint>

namespace shallow::cpu::lane_reduce {
namespace {

// v[0] + ... + v[n-1] in 16 running sums of T (one vector register of floats), then those.
template <class T>
inline T sum(const T* v, int64_t n) {
  T lanes[16] = {};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int l = 0; l < 16; ++l) lanes[l] += v[k + l];
  T total = 0;
  for (int l = 0; l < 16; ++l) total += lanes[l];
  for (; k < n; ++k) total += v[k];
  return total;
}

// The sum of term(k) for k in [0, n), accumulated in eight lanes of double.
template <class Term>
inline double sum_f64(int64_t n, Term term) {
  constexpr int kLanes = 8;
  double lanes[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += double(term(k + l));
  for (int l = 0; k < n; ++k, ++l) lanes[l] += double(term(k));
  return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) +
         ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
}

// The largest of v[0 .. n), NaNs passed over as std::max(running, v) passes them (written out:
// through std::max's references GCC does not vectorize the loop); `lowest` for n = 0.
template <class T>
inline T max(const T* v, int64_t n, T lowest) {
  constexpr int kWide = 16;
  T lanes[kWide];
  std::fill(lanes, lanes + kWide, lowest);
  int64_t k = 0;
  for (; k + kWide <= n; k += kWide)
    for (int l = 0; l < kWide; ++l) lanes[l] = lanes[l] < v[k + l] ? v[k + l] : lanes[l];
  T m = lowest;
  for (int l = 0; l < kWide; ++l) m = std::max(m, lanes[l]);
  for (; k < n; ++k) m = std::max(m, v[k]);
  return m;
}

}  // namespace
}  // namespace shallow::cpu::lane_reduce
