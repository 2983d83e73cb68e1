#pragma once
// The CUDA backend as the rest of the program sees it. Every function here exists in every
// build: without CUDA (or without a GPU and driver) cuda_available() is false and the others
// throw shallow::Error saying so.
#include <string>

#include "engine/device.h"

namespace shallow {

// True when this build has the CUDA backend and the machine has a usable GPU and driver.
// Never throws: a failing cudaGetDeviceCount means "no GPU".
bool cuda_available();
int cuda_device_count();  // 0 where cuda_available() is false
std::string cuda_device_name(int device = 0);

// Waits until every kernel and copy queued on the device has finished; reports a failure of
// any of them (kernels run asynchronously, so their errors surface here).
void cuda_synchronize(int device = 0);

// Gives the caching allocator's unused blocks back to the driver (memory_stats(Device::cuda(i))
// then shows reserved_bytes down to what live tensors hold).
void cuda_empty_cache(int device = 0);

// Which GEMM implementation matmul uses on CUDA: cuBLAS (the default) or the engine's own
// tiled kernel. The environment variable SHALLOW_CUDA_GEMM=cublas|tiled sets the initial value.
enum class CudaGemm { cublas, tiled };
void set_cuda_gemm(CudaGemm g);
CudaGemm cuda_gemm();
const char* cuda_gemm_name(CudaGemm g);  // "cublas", "tiled"

}  // namespace shallow
