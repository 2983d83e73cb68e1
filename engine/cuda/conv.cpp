// Convolutions on CUDA tensors: the implementation setting, and each pass through either the
// implicit-GEMM kernels or cuDNN (algorithms found once per shape, workspaces from the caching
// allocator; a shape for which cuDNN has no direct-sum algorithm runs on the implicit-GEMM
// kernels). The bias is always added and reduced by our own kernels.
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <type_traits>

#include "engine/cuda/conv_ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/conv_cudnn.h"

namespace shallow {

namespace {
CudaConv initial_conv() {
  const char* v = std::getenv("SHALLOW_CUDA_CONV");
  if (v && std::strcmp(v, "implicit_gemm") == 0) return CudaConv::implicit_gemm;
  return cuda::cudnn_built() ? CudaConv::cudnn : CudaConv::implicit_gemm;
}
std::atomic<CudaConv>& conv_setting() {
  static std::atomic<CudaConv> c{initial_conv()};
  return c;
}
}  // namespace

void set_cuda_conv(CudaConv c) {
  conv_setting().store(c == CudaConv::cudnn && !cuda::cudnn_built() ? CudaConv::implicit_gemm : c);
}
CudaConv cuda_conv() { return conv_setting().load(); }
const char* cuda_conv_name(CudaConv c) { return c == CudaConv::cudnn ? "cudnn" : "implicit_gemm"; }
bool cuda_conv_has_cudnn() { return cuda::cudnn_built(); }

namespace gpu {
namespace {

// Device scratch of `bytes` from the caching allocator (undefined for 0 bytes); it goes back
// to the cache when the tensor dies, and the stream order keeps it valid for the work queued.
Tensor scratch_bytes(size_t bytes, Device d) {
  return bytes ? Tensor::empty({int64_t(bytes)}, DType::u8, d) : Tensor();
}
void* ptr_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

// ---- cuDNN: the algorithm of each (device, pass, dtype, shape), found on first use

using AlgoKey = std::array<int64_t, 18>;

AlgoKey key_of(Device d, cuda::ConvPass pass, DType dt, const cpu::Conv2dShape& s) {
  return {d.index,    int64_t(pass), int64_t(dt), s.N,        s.C_in,     s.H,
          s.W,        s.C_out,       s.kH,        s.kW,       s.stride_h, s.stride_w,
          s.pad_h,    s.pad_w,       s.dil_h,     s.dil_w,    s.groups,   0};
}

std::mutex algos_mu;
std::map<AlgoKey, cuda::CudnnAlgo>& algos() {
  static auto* m = new std::map<AlgoKey, cuda::CudnnAlgo>();
  return *m;
}

// What cudnnFind may use while it times the algorithms; algorithms that need more are skipped.
constexpr size_t kFindWorkspaceBytes = size_t(256) << 20;

// Runs the pass through cuDNN; false (nothing run) where cuDNN has no direct-sum algorithm
// for the shape, and the caller uses the implicit-GEMM kernels instead.
template <class T>
bool run_cudnn_typed(cuda::ConvPass pass, const cpu::Conv2dShape& s, const cuda::ConvArrays<T>& a,
                     Device dev, DType dt, cudaStream_t stream, const char* name) {
  const AlgoKey key = key_of(dev, pass, dt, s);
  cuda::CudnnAlgo algo;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(algos_mu);
    auto it = algos().find(key);
    if (it != algos().end()) algo = it->second, known = true;
  }
  if (!known) {
    Tensor ws = scratch_bytes(kFindWorkspaceBytes, dev);
    check(cuda::cudnn_conv_find<T>(pass, s, a, ws.raw_data(), kFindWorkspaceBytes, &algo, stream),
          name);
    std::lock_guard<std::mutex> lock(algos_mu);
    algos()[key] = algo;
  }
  if (!algo.found) return false;
  Tensor ws = scratch_bytes(algo.workspace_bytes, dev);
  check(cuda::cudnn_conv_run<T>(pass, s, a, algo, ptr_or_null(ws), algo.workspace_bytes, stream),
        name);
  return true;
}

template <class T>
bool run_cudnn(cuda::ConvPass pass, const cpu::Conv2dShape& s, const cuda::ConvArrays<T>& a,
               Device dev, DType dt, cudaStream_t stream, const char* name) {
  if constexpr (std::is_same_v<T, bf16>) {
    // The callers send bf16 through f32 copies (cudnn_via_f32) before they get here.
    throw Error(str_cat(name, ": internal error: bf16 tensors reached the cuDNN call"));
  } else {
    return run_cudnn_typed<T>(pass, s, a, dev, dt, stream, name);
  }
}

bool use_cudnn() { return cuda_conv() == CudaConv::cudnn; }

// cuDNN runs f32 and f64 here: a bf16 convolution on the cuDNN path goes through f32 copies
// (the implicit-GEMM kernels take bf16 directly).
bool cudnn_via_f32(const Tensor& t) { return use_cudnn() && t.dtype() == DType::bf16; }
Tensor f32_or_undefined(const Tensor& t) { return t.defined() ? t.to(DType::f32) : Tensor(); }

// Calls fn with a value of the element type: float, double or bf16.
template <class Fn>
void dispatch(DType dt, const char* name, Fn fn) {
  switch (dt) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::bf16: return fn(bf16{});
    default: break;
  }
  throw Error(str_cat(name, ": no CUDA convolution for ", dtype_name(dt)));
}

template <class T>
T* mut(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void conv2d_forward(const cpu::Conv2dShape& s, const Tensor& x, const Tensor& w, const Tensor& b,
                    Tensor& y, const char* name) {
  cudaStream_t stream = stream_for(x.device(), name);
  if (y.numel() == 0) return;
  if (cudnn_via_f32(x)) {
    Tensor y32 = Tensor::empty(y.shape(), DType::f32, y.device());
    conv2d_forward(s, x.to(DType::f32), w.to(DType::f32), f32_or_undefined(b), y32, name);
    y.copy_(y32);
    return;
  }
  dispatch(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const bool by_cudnn =
        use_cudnn() && run_cudnn<T>(cuda::ConvPass::forward, s, {mut<T>(x), mut<T>(w), mut<T>(y)},
                                    x.device(), x.dtype(), stream, name);
    if (by_cudnn) {
      if (b.defined()) check(cuda::conv2d_add_bias<T>(s, b.data<T>(), y.data<T>(), stream), name);
    } else {
      check(cuda::conv2d_forward<T>(s, x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr,
                                    y.data<T>(), stream),
            name);
    }
  });
}

void conv2d_backward_input(const cpu::Conv2dShape& s, const Tensor& gy, const Tensor& w,
                           Tensor& gx, const char* name) {
  cudaStream_t stream = stream_for(gy.device(), name);
  if (gx.numel() == 0) return;
  if (cudnn_via_f32(gy)) {
    Tensor gx32 = Tensor::empty(gx.shape(), DType::f32, gx.device());
    conv2d_backward_input(s, gy.to(DType::f32), w.to(DType::f32), gx32, name);
    gx.copy_(gx32);
    return;
  }
  dispatch(gy.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const bool by_cudnn =
        use_cudnn() && gy.numel() > 0 &&
        run_cudnn<T>(cuda::ConvPass::backward_input, s, {mut<T>(gx), mut<T>(w), mut<T>(gy)},
                     gy.device(), gy.dtype(), stream, name);
    if (!by_cudnn)
      check(cuda::conv2d_backward_input<T>(s, gy.data<T>(), w.data<T>(), gx.data<T>(), stream),
            name);
  });
}

void conv2d_backward_weight(const cpu::Conv2dShape& s, const Tensor& gy, const Tensor& x,
                            Tensor& gw, const char* name) {
  cudaStream_t stream = stream_for(gy.device(), name);
  if (gw.numel() == 0) return;
  if (cudnn_via_f32(gy)) {
    Tensor gw32 = Tensor::empty(gw.shape(), DType::f32, gw.device());
    conv2d_backward_weight(s, gy.to(DType::f32), x.to(DType::f32), gw32, name);
    gw.copy_(gw32);
    return;
  }
  dispatch(gy.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const bool by_cudnn =
        use_cudnn() && gy.numel() > 0 &&
        run_cudnn<T>(cuda::ConvPass::backward_weight, s, {mut<T>(x), mut<T>(gw), mut<T>(gy)},
                     gy.device(), gy.dtype(), stream, name);
    if (!by_cudnn) {
      const size_t bytes = cuda::conv2d_backward_weight_scratch_bytes<T>(s);
      Tensor scratch = scratch_bytes(bytes, gy.device());
      check(cuda::conv2d_backward_weight<T>(s, gy.data<T>(), x.data<T>(), gw.data<T>(),
                                            ptr_or_null(scratch), bytes, stream),
            name);
    }
  });
}

void conv2d_backward_bias(const cpu::Conv2dShape& s, const Tensor& gy, Tensor& gb,
                          const char* name) {
  cudaStream_t stream = stream_for(gy.device(), name);
  if (gb.numel() == 0) return;
  dispatch(gy.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const size_t bytes = cuda::conv2d_backward_bias_scratch_bytes<T>(s);
    Tensor scratch = scratch_bytes(bytes, gy.device());
    check(cuda::conv2d_backward_bias<T>(s, gy.data<T>(), gb.data<T>(), ptr_or_null(scratch), bytes,
                                        stream),
          name);
  });
}

}  // namespace gpu
}  // namespace shallow
