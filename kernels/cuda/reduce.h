#pragma once
// Reductions over the middle axis of a contiguous [outer, n, inner] device block: the CUDA twin
// of kernels/cpu/reduce.h.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/reduce.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

using cpu::ReduceOp;

// Device scratch that reduce needs for these sizes (0: none). Few long rows (inner == 1, a
// whole tensor summed into one value) are split into parts of one block each, whose partial
// results land here and are then combined in a fixed order: one block per row would leave the
// GPU idle (a 10^6-value sum: 0.4 ms on one block).
template <class T>
size_t reduce_scratch_bytes(int64_t outer, int64_t n, int64_t inner);

// y[o, i] = reduce_k x[o, k, i]; y is contiguous [outer, inner]. For max/min, `index` (if not
// null) receives the k of the first extreme value (NaN counts as the extreme), and n must be
// positive. `scratch` is a device block of at least reduce_scratch_bytes<T>(outer, n, inner)
// bytes (may be null where that is 0). Results do not depend on timing.
template <class T>
Status reduce(ReduceOp op, int64_t outer, int64_t n, int64_t inner, const T* x, T* y,
              int64_t* index, void* scratch, size_t scratch_bytes, cudaStream_t stream);

}  // namespace shallow::cuda
