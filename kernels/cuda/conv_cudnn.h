#pragma once
// 2-D convolution through cuDNN (its legacy convolution API), the other implementation behind
// the same contract as conv.h. cuDNN is optional: in a build without it (SHALLOW_WITH_CUDNN
// unset) cudnn_built() is false and every other function returns a failed Status. cudnn.h is
// not needed by callers: handles and descriptors live inside conv_cudnn.cu.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/cpu/conv.h"
#include "kernels/cuda/status.h"

namespace shallow::cuda {

bool cudnn_built();
// cudnnGetVersion(), e.g. 91900 for 9.19.0; 0 without cuDNN.
size_t cudnn_version();

enum class ConvPass { forward, backward_input, backward_weight };
const char* conv_pass_name(ConvPass p);  // "forward", "backward input", "backward weight"

// The three arrays of a convolution in cuDNN's roles: x [N, C_in, H, W], w the filter,
// y [N, C_out, H_out, W_out]. Each pass writes one of them and reads the other two:
//   forward: y from x and w;  backward_input: x (gx) from y (gy) and w;
//   backward_weight: w (gw) from x and y (gy).
template <class T>
struct ConvArrays {
  T* x;
  T* w;
  T* y;
};

// An algorithm for one pass and shape (a cuDNN enum as an int), with the workspace it needs.
// It was timed with FMA math, and runs with it. found is false where cuDNN has no suitable
// algorithm for the shape.
struct CudnnAlgo {
  bool found = false;
  int algo = 0;
  size_t workspace_bytes = 0;
};

// Times the pass's algorithms that fit in `workspace_bytes` (cudnnFind*AlgorithmEx) and
// returns the fastest of those that sum products directly (implicit GEMM, GEMM, direct; not
// FFT or Winograd, whose f32 errors are far larger), or best->found = false if none ran. It
// runs the pass, so the written array holds a result afterwards.
// Float convolutions use FMA math only (no TF32), as the f32 GEMM does. Synchronizes.
template <class T>
Status cudnn_conv_find(ConvPass pass, const cpu::Conv2dShape& s, const ConvArrays<T>& a,
                       void* workspace, size_t workspace_bytes, CudnnAlgo* best,
                       cudaStream_t stream);

// Runs the pass with an algorithm found for this shape.
template <class T>
Status cudnn_conv_run(ConvPass pass, const cpu::Conv2dShape& s, const ConvArrays<T>& a,
                      const CudnnAlgo& algo, void* workspace, size_t workspace_bytes,
                      cudaStream_t stream);

}  // namespace shallow::cuda
