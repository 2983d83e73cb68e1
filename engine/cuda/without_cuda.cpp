// The CUDA backend's entry points in a build without CUDA (compiled instead of the other files
// of this folder). cuda_available() is false; no tensor can be on a CUDA device, so the op
// entry points are never reached, and say so if they are.
#include "engine/allocator.h"
#include "engine/cuda/api.h"
#include "engine/cuda/ops.h"

namespace shallow {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(str_cat(what, ": this build has no CUDA backend (configure with -DSHALLOW_CUDA=ON)"));
}
}  // namespace

bool cuda_available() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_device_name(int) { no_cuda("cuda_device_name"); }
void cuda_synchronize(int) { no_cuda("cuda_synchronize"); }
void cuda_empty_cache(int) { no_cuda("cuda_empty_cache"); }
void set_cuda_gemm(CudaGemm) {}
CudaGemm cuda_gemm() { return CudaGemm::cublas; }
const char* cuda_gemm_name(CudaGemm g) { return g == CudaGemm::tiled ? "tiled" : "cublas"; }

Allocator& cuda_caching_allocator(int index) {
  throw Error(str_cat("device cuda:", index,
                      " is not available: this build has no CUDA backend (configure with "
                      "-DSHALLOW_CUDA=ON)"));
}

namespace gpu {
void copy(const Tensor&, Tensor&) { no_cuda("copy_"); }
void fill(Tensor&, double) { no_cuda("fill_"); }
void unary(cpu::UnaryOp, const Tensor&, Tensor&, cpu::UnaryParams, const char* name) { no_cuda(name); }
void unary_backward(cpu::UnaryOp, const Tensor&, const Tensor&, const Tensor&, Tensor&,
                    cpu::UnaryParams, const char* name) { no_cuda(name); }
void binary(cpu::BinaryOp, const Tensor&, const Tensor&, Tensor&, const char* name) { no_cuda(name); }
void reduce(cpu::ReduceOp, int64_t, int64_t, int64_t, const Tensor&, Tensor&, const Tensor&,
            const char* name) { no_cuda(name); }
void softmax(int64_t, int64_t, int64_t, const Tensor&, Tensor&, bool, const char* name) { no_cuda(name); }
void softmax_backward(int64_t, int64_t, int64_t, const Tensor&, const Tensor&, Tensor&, bool,
                      const char* name) { no_cuda(name); }
void layer_norm(int64_t, int64_t, const Tensor&, const Tensor&, const Tensor&, double, Tensor&,
                Tensor&, Tensor&, const char* name) { no_cuda(name); }
void layer_norm_backward(int64_t, int64_t, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&,
                         const char* name) { no_cuda(name); }
void gemm_batched(int64_t, bool, bool, int64_t, int64_t, int64_t, const Tensor&, int64_t, int64_t,
                  const Tensor&, int64_t, int64_t, Tensor&, const char* name) { no_cuda(name); }
void adam_update(Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&, const cpu::AdamHyper&,
                 const char* name) { no_cuda(name); }
}  // namespace gpu

}  // namespace shallow
