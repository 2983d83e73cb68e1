#include "kernels/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/lane_reduce.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rows.h"

namespace shallow::cpu {
namespace {

// Statistics are summed in double: batch norm sums over N * H * W values, and the variance of
// values far from zero loses digits quickly in f32.
using acc_t = double;

int64_t grain_for(int64_t elements_per_item) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(elements_per_item, 1));
}

// Rows per block when layer norm's weight/bias gradients are summed: fixed by the row count
// alone (never the thread count), so the summation order is reproducible.
int64_t layer_norm_block_rows(int64_t rows) { return std::max<int64_t>(32, (rows + 255) / 256); }

}  // namespace

// ---- layer norm

namespace {

// One row of layer norm: yr = (xr - mean) * rstd * weight + bias, returning mean and rstd.
template <class T>
void layer_norm_row(int64_t n, const T* xr, const T* weight, const T* bias, double eps, T* yr,
                    T& mean, T& rstd) {
  const acc_t m = lane_reduce::sum_f64(n, [&](int64_t k) { return xr[k]; }) / acc_t(n);
  const acc_t ss = lane_reduce::sum_f64(n, [&](int64_t k) {
    const acc_t d = acc_t(xr[k]) - m;
    return d * d;
  });
  const T mu = T(m), rs = T(1.0 / std::sqrt(ss / acc_t(n) + eps));
  mean = mu;
  rstd = rs;
  if (weight && bias) {
    for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs * weight[k] + bias[k];
  } else if (weight) {
    for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs * weight[k];
  } else if (bias) {
    for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs + bias[k];
  } else {
    for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs;
  }
}

}  // namespace

template <class T>
void layer_norm(int64_t rows, int64_t n, const T* x, const T* weight, const T* bias, double eps,
                T* y, T* mean, T* rstd) {
  parallel_for(0, rows, grain_for(n), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      layer_norm_row(n, x + r * n, weight, bias, eps, y + r * n, mean[r], rstd[r]);
  });
}

template <class H>
void layer_norm_half(int64_t rows, int64_t n, const H* x, const float* weight, const float* bias,
                     double eps, H* y) {
  parallel_for(0, rows, grain_for(n), [&](int64_t b, int64_t e) {
    std::vector<float> in(static_cast<size_t>(n)), out(static_cast<size_t>(n));
    for (int64_t r = b; r < e; ++r) {
      const H* xr = x + r * n;
      H* yr = y + r * n;
      for (int64_t k = 0; k < n; ++k) in[size_t(k)] = float(xr[k]);
      float mean, rstd;
      layer_norm_row(n, in.data(), weight, bias, eps, out.data(), mean, rstd);
      for (int64_t k = 0; k < n; ++k) yr[k] = H(out[size_t(k)]);
    }
  });
}

template void layer_norm_half<bf16>(int64_t, int64_t, const bf16*, const float*, const float*,
                                    double, bf16*);
template void layer_norm_half<f16>(int64_t, int64_t, const f16*, const float*, const float*,
                                   double, f16*);

template <class T>
void layer_norm_backward(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd,
                         const T* weight, const T* gy, T* gx, T* gweight, T* gbias) {
  const int64_t block = layer_norm_block_rows(rows);
  const int64_t blocks = (rows + block - 1) / block;
  const bool affine_grads = gweight || gbias;
  // Per-block partial sums of gy * xhat and gy, reduced in block order afterwards.
  std::vector<T> part_w(affine_grads ? size_t(blocks * n) : 0, T(0));
  std::vector<T> part_b(affine_grads ? size_t(blocks * n) : 0, T(0));

  parallel_for(0, blocks, 1, [&](int64_t bb, int64_t be) {
    std::vector<T> g(static_cast<size_t>(n));  // gy * weight for the current row
    for (int64_t blk = bb; blk < be; ++blk) {
      T* pw = affine_grads ? part_w.data() + blk * n : nullptr;
      T* pb = affine_grads ? part_b.data() + blk * n : nullptr;
      const int64_t r_end = std::min(rows, (blk + 1) * block);
      for (int64_t r = blk * block; r < r_end; ++r) {
        const T* xr = x + r * n;
        const T* gr = gy + r * n;
        const T mu = mean[r], rs = rstd[r];
        if (affine_grads) {
          for (int64_t k = 0; k < n; ++k) {
            pw[k] += gr[k] * (xr[k] - mu) * rs;
            pb[k] += gr[k];
          }
        }
        if (!gx) continue;
        // gx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = gy * weight.
        T* gk = g.data();
        if (weight)
          for (int64_t k = 0; k < n; ++k) gk[k] = gr[k] * weight[k];
        else
          std::copy(gr, gr + n, gk);
        const acc_t sum_g = lane_reduce::sum_f64(n, [&](int64_t k) { return gk[k]; });
        const acc_t sum_gx = lane_reduce::sum_f64(
            n, [&](int64_t k) { return acc_t(gk[k]) * (acc_t(xr[k]) - mu); });
        const T a = T(sum_g / acc_t(n));
        const T c = T(sum_gx * rs / acc_t(n));
        T* out = gx + r * n;
        for (int64_t k = 0; k < n; ++k) out[k] = rs * (g[size_t(k)] - a - (xr[k] - mu) * rs * c);
      }
    }
  });

  if (!affine_grads) return;
  parallel_for(0, n, grain_for(blocks), [&](int64_t kb, int64_t ke) {
    for (int64_t k = kb; k < ke; ++k) {
      T sw = 0, sb = 0;
      for (int64_t blk = 0; blk < blocks; ++blk) {
        sw += part_w[size_t(blk * n + k)];
        sb += part_b[size_t(blk * n + k)];
      }
      if (gweight) gweight[k] = sw;
      if (gbias) gbias[k] = sb;
    }
  });
}

// ---- batch norm

template <class T>
void batch_norm_stats(int64_t N, int64_t C, int64_t S, const T* x, T* mean, T* var) {
  const int64_t count = N * S;
  parallel_for(0, C, grain_for(count), [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      acc_t s = 0;
      for (int64_t i = 0; i < N; ++i) {
        const T* p = x + (i * C + c) * S;
        for (int64_t j = 0; j < S; ++j) s += p[j];
      }
      const acc_t m = s / acc_t(count);
      acc_t ss = 0;
      for (int64_t i = 0; i < N; ++i) {
        const T* p = x + (i * C + c) * S;
        for (int64_t j = 0; j < S; ++j) {
          const acc_t d = acc_t(p[j]) - m;
          ss += d * d;
        }
      }
      mean[c] = T(m);
      var[c] = T(ss / acc_t(count));
    }
  });
}

template <class T>
void batch_norm_apply(int64_t N, int64_t C, int64_t S, const T* x, const T* mean, const T* invstd,
                      const T* weight, const T* bias, T* y) {
  // One plane (sample i, channel c) at a time: y = x * scale + shift.
  parallel_for(0, N * C, grain_for(S), [&](int64_t pb, int64_t pe) {
    for (int64_t p = pb; p < pe; ++p) {
      const int64_t c = p % C;
      const T scale = invstd[c] * (weight ? weight[c] : T(1));
      const T shift = (bias ? bias[c] : T(0)) - mean[c] * scale;
      const T* xp = x + p * S;
      T* yp = y + p * S;
      for (int64_t j = 0; j < S; ++j) yp[j] = xp[j] * scale + shift;
    }
  });
}

template <class T>
void batch_norm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* mean,
                         const T* invstd, const T* weight, const T* gy, bool batch_stats, T* gx,
                         T* gweight, T* gbias) {
  const int64_t count = N * S;
  parallel_for(0, C, grain_for(count), [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      const T mu = mean[c], is = invstd[c];
      acc_t sum_g = 0, sum_g_xhat = 0;
      for (int64_t i = 0; i < N; ++i) {
        const T* xp = x + (i * C + c) * S;
        const T* gp = gy + (i * C + c) * S;
        for (int64_t j = 0; j < S; ++j) {
          sum_g += gp[j];
          sum_g_xhat += acc_t(gp[j]) * (acc_t(xp[j]) - mu);
        }
      }
      sum_g_xhat *= is;
      if (gweight) gweight[c] = T(sum_g_xhat);
      if (gbias) gbias[c] = T(sum_g);
      if (!gx) continue;
      const T w_is = (weight ? weight[c] : T(1)) * is;
      // Training: the batch mean and variance depend on x too, which removes the mean of gy
      // and its projection on xhat.
      const T a = batch_stats ? T(sum_g / acc_t(count)) : T(0);
      const T b = batch_stats ? T(sum_g_xhat / acc_t(count)) * is : T(0);
      for (int64_t i = 0; i < N; ++i) {
        const T* xp = x + (i * C + c) * S;
        const T* gp = gy + (i * C + c) * S;
        T* op = gx + (i * C + c) * S;
        for (int64_t j = 0; j < S; ++j) op[j] = w_is * (gp[j] - a - (xp[j] - mu) * b);
      }
    }
  });
}

// ---- L2 normalization

template <class T>
void l2_normalize(int64_t outer, int64_t n, int64_t inner, const T* x, double eps, T* y, T* norm) {
  auto row = [&](int64_t start, int64_t stride) {
    const acc_t ss = lane_reduce::sum_f64(n, [&](int64_t k) {
      const acc_t v = x[start + k * stride];
      return v * v;
    });
    const T nrm = T(std::sqrt(ss));
    const T scale = T(1) / std::max(nrm, T(eps));
    for (int64_t k = 0; k < n; ++k) y[start + k * stride] = x[start + k * stride] * scale;
    norm[(start / (n * inner)) * inner + start % inner] = nrm;
  };
  for_each_row(outer, n, inner, row);
}

template <class T>
void l2_normalize_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* norm,
                           double eps, const T* gy, T* gx) {
  auto row = [&](int64_t start, int64_t stride) {
    const T nrm = norm[(start / (n * inner)) * inner + start % inner];
    if (!(nrm > T(eps))) {  // the clamp is active: y = x / eps is linear in x
      for (int64_t k = 0; k < n; ++k) gx[start + k * stride] = gy[start + k * stride] / T(eps);
      return;
    }
    const acc_t dot = lane_reduce::sum_f64(
        n, [&](int64_t k) { return acc_t(gy[start + k * stride]) * y[start + k * stride]; });
    const T d = T(dot), inv = T(1) / nrm;
    for (int64_t k = 0; k < n; ++k)
      gx[start + k * stride] = (gy[start + k * stride] - y[start + k * stride] * d) * inv;
  };
  for_each_row(outer, n, inner, row);
}

#define SH_INSTANTIATE_NORM(T)                                                                     \
  template void layer_norm<T>(int64_t, int64_t, const T*, const T*, const T*, double, T*, T*, T*); \
  template void layer_norm_backward<T>(int64_t, int64_t, const T*, const T*, const T*, const T*,   \
                                       const T*, T*, T*, T*);                                      \
  template void batch_norm_stats<T>(int64_t, int64_t, int64_t, const T*, T*, T*);                  \
  template void batch_norm_apply<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*,       \
                                    const T*, const T*, T*);                                       \
  template void batch_norm_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*,    \
                                       const T*, const T*, bool, T*, T*, T*);                      \
  template void l2_normalize<T>(int64_t, int64_t, int64_t, const T*, double, T*, T*);              \
  template void l2_normalize_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, double,    \
                                         const T*, T*);
SH_INSTANTIATE_NORM(float)
SH_INSTANTIATE_NORM(double)
#undef SH_INSTANTIATE_NORM

}  // namespace shallow::cpu
