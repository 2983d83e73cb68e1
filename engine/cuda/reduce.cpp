// Reductions and softmax on CUDA tensors.
#include "engine/cuda/ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/softmax.h"

namespace shallow::gpu {

void reduce(cpu::ReduceOp op, int64_t outer, int64_t n, int64_t inner, const Tensor& x, Tensor& y,
            const Tensor& index, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  int64_t* ip = index.defined() ? index.data<int64_t>() : nullptr;
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    // few long rows are split across blocks, whose partial results need scratch
    const size_t bytes = cuda::reduce_scratch_bytes<scalar_t>(outer, n, inner);
    Tensor scratch;
    if (bytes > 0) scratch = Tensor::empty({int64_t(bytes)}, DType::u8, x.device());
    check(cuda::reduce<scalar_t>(op, outer, n, inner, static_cast<const scalar_t*>(x.raw_data()),
                                 y.data<scalar_t>(), ip, bytes > 0 ? scratch.raw_data() : nullptr,
                                 bytes, stream),
          name);
  });
}

void softmax(int64_t outer, int64_t n, int64_t inner, const Tensor& x, Tensor& y, bool log,
             const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  SH_DISPATCH_FLOAT(x.dtype(), name, [&] {
    check(cuda::softmax<scalar_t>(outer, n, inner, x.data<scalar_t>(), y.data<scalar_t>(), log,
                                  stream),
          name);
  });
}

void softmax_backward(int64_t outer, int64_t n, int64_t inner, const Tensor& y, const Tensor& gy,
                      Tensor& gx, bool log, const char* name) {
  cudaStream_t stream = stream_for(y.device(), name);
  SH_DISPATCH_FLOAT(y.dtype(), name, [&] {
    check(cuda::softmax_backward<scalar_t>(outer, n, inner, y.data<scalar_t>(),
                                           gy.data<scalar_t>(), gx.data<scalar_t>(), log, stream),
          name);
  });
}

}  // namespace shallow::gpu
