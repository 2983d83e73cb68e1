#pragma once
// Cross-entropy from logits on device arrays: the CUDA twin of kernels/cpu/loss.h (same
// formulas, same handling of label smoothing). Targets are checked by the caller.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/status.h"

namespace shallow::cuda {

// Per row r of [rows, classes]: loss[r] = (1 - s)(lse - x[t]) + (s / C)(C lse - sum_j x[j]),
// lse[r] = log(sum_j exp(x[j])) saved for the backward. One block per row.
template <class T>
Status cross_entropy(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                     double smoothing, T* loss, T* lse, cudaStream_t stream);

// gx[r, j] = row_scale[r] * (softmax(x)[r, j] - s / C) - row_scale[r] * (1 - s) [j == t].
template <class T>
Status cross_entropy_backward(int64_t rows, int64_t classes, const T* logits, const int64_t* target,
                              double smoothing, const T* lse, const T* row_scale, T* gx,
                              cudaStream_t stream);

}  // namespace shallow::cuda
