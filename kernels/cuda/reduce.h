#pragma once
// Reductions over the middle axis of a contiguous [outer, n, inner] device block: the CUDA twin
// of kernels/cpu/reduce.h.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/reduce.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

using cpu::ReduceOp;

// y[o, i] = reduce_k x[o, k, i]; y is contiguous [outer, inner]. For max/min, `index` (if not
// null) receives the k of the first extreme value (NaN counts as the extreme), and n must be
// positive.
template <class T>
Status reduce(ReduceOp op, int64_t outer, int64_t n, int64_t inner, const T* x, T* y,
              int64_t* index, cudaStream_t stream);

}  // namespace shallow::cuda
