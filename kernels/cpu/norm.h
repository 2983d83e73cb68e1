#pragma once
// Normalization kernels: layer norm over contiguous rows, batch norm over the channels of a
// contiguous [N, C, S] block (S = the product of the spatial dims), and L2 normalization of
// the rows of an [outer, n, inner] block. Weight and bias pointers may be null (no affine).
#include <cstdint>

#include "kernels/cpu/half.h"

namespace shallow::cpu {

// x is [rows, n]; y = (x - mean) * rstd * weight + bias per row. mean and rstd ([rows]) are
// saved for the backward.
template <class T>
void layer_norm(int64_t rows, int64_t n, const T* x, const T* weight, const T* bias, double eps,
                T* y, T* mean, T* rstd);

// layer_norm for bf16/f16 rows (H is bf16 or f16 of half.h) without saved statistics, for
// inference: each row is widened to f32, normalized as layer_norm<float> does, and rounded once.
template <class H>
void layer_norm_half(int64_t rows, int64_t n, const H* x, const float* weight, const float* bias,
                     double eps, H* y);

// gx (may be null), and gweight/gbias ([n], may be null) from gy. The sums over rows for
// gweight/gbias are taken in fixed blocks of rows, so the result does not depend on threads.
template <class T>
void layer_norm_backward(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd,
                         const T* weight, const T* gy, T* gx, T* gweight, T* gbias);

// Per channel: mean and biased variance over the N * S values.
template <class T>
void batch_norm_stats(int64_t N, int64_t C, int64_t S, const T* x, T* mean, T* var);

// y = (x - mean[c]) * invstd[c] * weight[c] + bias[c].
template <class T>
void batch_norm_apply(int64_t N, int64_t C, int64_t S, const T* x, const T* mean, const T* invstd,
                      const T* weight, const T* bias, T* y);

// Gradients of batch_norm_apply. With `batch_stats` (training) mean and invstd were computed
// from x itself, and gx includes the terms that flow through them. gx, gweight, gbias may be null.
template <class T>
void batch_norm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* mean,
                         const T* invstd, const T* weight, const T* gy, bool batch_stats, T* gx,
                         T* gweight, T* gbias);

// y = x / max(||x||_2, eps) along the n axis; norm ([outer, inner]) is saved for the backward.
template <class T>
void l2_normalize(int64_t outer, int64_t n, int64_t inner, const T* x, double eps, T* y, T* norm);

// gx = (gy - y * <gy, y>) / norm where norm > eps, else gy / eps.
template <class T>
void l2_normalize_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* norm,
                           double eps, const T* gy, T* gx);

}  // namespace shallow::cpu
