#pragma once
// Inside the CUDA backend: per-device stream and cuBLAS handle, and the conversion of CUDA
// failures into shallow::Error. Only engine/cuda/*.cpp include this (it needs the CUDA headers).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "engine/device.h"
#include "engine/error.h"
#include "kernels/cuda/status.h"

namespace shallow::gpu {

// Throws shallow::Error "<op>: <call> failed: <message>" unless the call succeeded.
void check(cudaError_t e, const char* call, const char* op);
void check(const cuda::Status& s, const char* op);

// Checks a CUDA runtime call, naming it and the op in the error.
#define SH_CUDA_CHECK(expr, op) ::shallow::gpu::check((expr), #expr, (op))

// Makes `d` the current device and returns the stream all of its work is queued on (one
// non-blocking stream per device, created on first use). Throws for a device that does not exist.
cudaStream_t stream_for(Device d, const char* op);

// The device's cuBLAS handle (created on first use).
cublasHandle_t cublas_for(Device d, const char* op);

}  // namespace shallow::gpu
