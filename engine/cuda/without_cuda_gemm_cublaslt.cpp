// engine/cuda/gemm_cublaslt_ops.h in a build without CUDA: the settings are kept (they select
// nothing here) and no product ever runs through cuBLASLt.
#include <atomic>

#include "engine/cuda/gemm_cublaslt_ops.h"

namespace shallow::gpu {
namespace {
std::atomic<bool> g_allowed{true};
std::atomic<bool> g_relu_epilogue{false};
}  // namespace

void set_cublaslt_allowed(bool allowed) { g_allowed.store(allowed); }
bool cublaslt_allowed() { return g_allowed.load(); }
void set_cublaslt_relu_epilogue(bool allowed) { g_relu_epilogue.store(allowed); }
bool cublaslt_relu_epilogue() { return g_relu_epilogue.load(); }
uint64_t cublaslt_gemm_count() { return 0; }

}  // namespace shallow::gpu
