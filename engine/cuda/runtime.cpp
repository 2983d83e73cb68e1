// Device discovery, streams, cuBLAS handles, synchronization and the GEMM setting.
#include "engine/cuda/runtime.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "engine/allocator.h"
#include "engine/cuda/api.h"

namespace shallow {
namespace gpu {

void check(cudaError_t e, const char* call, const char* op) {
  if (e == cudaSuccess) return;
  throw Error(str_cat(op, ": ", call, " failed: ", cudaGetErrorString(e), " (", cudaGetErrorName(e),
                      ")"));
}

void check(const cuda::Status& s, const char* op) {
  if (s.ok()) return;
  throw Error(str_cat(op, ": ", s.call, " failed: ", s.message));
}

namespace {

struct PerDevice {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
};

std::mutex devices_mu;
// Never destroyed: streams and handles must outlive every tensor, static ones included, and
// tearing them down after the CUDA runtime has shut down at exit would fail.
std::vector<PerDevice>& devices() {
  static auto* d = new std::vector<PerDevice>(size_t(cuda_device_count()));
  return *d;
}

PerDevice& per_device(Device d, const char* op) {
  SH_CHECK(d.is_cuda(), op, ": ", d.str(), " is not a CUDA device");
  SH_CHECK(cuda_available(), op, ": ", d.str(), " is not available: no CUDA device or driver");
  SH_CHECK(d.index >= 0 && d.index < cuda_device_count(), op, ": ", d.str(),
           " does not exist (", cuda_device_count(), " CUDA devices)");
  return devices()[size_t(d.index)];
}

void set_device(int index, const char* op) {
  int current = -1;
  SH_CUDA_CHECK(cudaGetDevice(&current), op);
  if (current != index) SH_CUDA_CHECK(cudaSetDevice(index), op);
}

}  // namespace

cudaStream_t stream_for(Device d, const char* op) {
  PerDevice& pd = per_device(d, op);
  set_device(d.index, op);
  std::lock_guard<std::mutex> lock(devices_mu);
  if (!pd.stream) SH_CUDA_CHECK(cudaStreamCreateWithFlags(&pd.stream, cudaStreamNonBlocking), op);
  return pd.stream;
}

cublasHandle_t cublas_for(Device d, const char* op) {
  stream_for(d, op);  // sets the device: a handle belongs to the device current at creation
  PerDevice& pd = per_device(d, op);
  std::lock_guard<std::mutex> lock(devices_mu);
  if (!pd.cublas) {
    cublasStatus_t s = cublasCreate(&pd.cublas);
    SH_CHECK(s == CUBLAS_STATUS_SUCCESS, op, ": cublasCreate failed: ", cublasGetStatusString(s));
  }
  return pd.cublas;
}

}  // namespace gpu

bool cuda_available() { return cuda_device_count() > 0; }

int cuda_device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear it: no driver or no GPU is an answer, not a failure
      return 0;
    }
    return n;
  }();
  return count;
}

std::string cuda_device_name(int device) {
  const Device d = Device::cuda(device);
  gpu::stream_for(d, "cuda_device_name");
  cudaDeviceProp prop;
  SH_CUDA_CHECK(cudaGetDeviceProperties(&prop, device), "cuda_device_name");
  return prop.name;
}

void cuda_synchronize(int device) {
  cudaStream_t s = gpu::stream_for(Device::cuda(device), "cuda_synchronize");
  SH_CUDA_CHECK(cudaStreamSynchronize(s), "cuda_synchronize");
  SH_CUDA_CHECK(cudaGetLastError(), "cuda_synchronize");
}

void cuda_empty_cache(int device) { allocator_for(Device::cuda(device)).release_cache(); }

namespace {
CudaGemm initial_gemm() {
  const char* v = std::getenv("SHALLOW_CUDA_GEMM");
  if (v && std::strcmp(v, "tiled") == 0) return CudaGemm::tiled;
  return CudaGemm::cublas;
}
std::atomic<CudaGemm>& gemm_setting() {
  static std::atomic<CudaGemm> g{initial_gemm()};
  return g;
}
}  // namespace

void set_cuda_gemm(CudaGemm g) { gemm_setting().store(g); }
CudaGemm cuda_gemm() { return gemm_setting().load(); }
const char* cuda_gemm_name(CudaGemm g) { return g == CudaGemm::tiled ? "tiled" : "cublas"; }

}  // namespace shallow
