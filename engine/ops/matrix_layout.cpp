#include "engine/ops/matrix_layout.h"

namespace shallow {

std::optional<MatLayout> mat_layout(const Tensor& t) {
  const int64_t n = t.dim();
  const int64_t rows = t.shape()[size_t(n - 2)], cols = t.shape()[size_t(n - 1)];
  const int64_t sr = t.strides()[size_t(n - 2)], sc = t.strides()[size_t(n - 1)];
  if (sc == 1 || cols == 1) return MatLayout{false, rows == 1 ? cols : sr};
  if (sr == 1 || rows == 1) return MatLayout{true, cols == 1 ? rows : sc};
  return std::nullopt;
}

std::optional<int64_t> batch_stride(const Tensor& t, int64_t batch_dims) {
  int64_t stride = 0, expected = 0;
  bool first = true;
  for (int64_t d = batch_dims - 1; d >= 0; --d) {
    const int64_t s = t.shape()[size_t(d)], st = t.strides()[size_t(d)];
    if (s == 1) continue;
    if (first) { stride = st; expected = st * s; first = false; continue; }
    if (st != expected) return std::nullopt;
    expected = st * s;
  }
  return stride;
}

}  // namespace shallow
