// Convolution through cuDNN: descriptors made per call (cheap, host only), one handle per
// device, and the three passes behind one switch. Without SHALLOW_WITH_CUDNN only the stubs at
// the end are compiled.
#include "kernels/cuda/conv_cudnn.h"

#include <climits>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#if SHALLOW_WITH_CUDNN
#include <cudnn.h>
#endif

namespace shallow::cuda {

const char* conv_pass_name(ConvPass p) {
  switch (p) {
    case ConvPass::forward: return "forward";
    case ConvPass::backward_input: return "backward input";
    case ConvPass::backward_weight: return "backward weight";
  }
  return "?";
}

#if SHALLOW_WITH_CUDNN

bool cudnn_built() { return true; }
size_t cudnn_version() { return cudnnGetVersion(); }

namespace {

Status cudnn_failed(const char* call, cudnnStatus_t st) {
  return Status{call, cudnnGetErrorString(st)};
}

#define SH_CUDNN_RETURN_IF_ERROR(expr)                          \
  do {                                                          \
    cudnnStatus_t sh_st_ = (expr);                              \
    if (sh_st_ != CUDNN_STATUS_SUCCESS) return cudnn_failed(#expr, sh_st_); \
  } while (0)

// One handle per device, created on first use on the device current at the call (the engine
// makes the tensor's device current before calling). Never destroyed, like the streams: they
// must outlive static tensors. The mutex also keeps two host threads from interleaving
// cudnnSetStream and the call that follows on one handle.
std::mutex handles_mu;
std::vector<cudnnHandle_t>& handles() {
  static auto* h = new std::vector<cudnnHandle_t>();
  return *h;
}

Status handle_for_current_device(cudnnHandle_t* out) {
  int device = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return Status{"cudaGetDevice", cudaGetErrorString(e)};
  auto& hs = handles();
  if (hs.size() <= size_t(device)) hs.resize(size_t(device) + 1, nullptr);
  if (!hs[size_t(device)]) SH_CUDNN_RETURN_IF_ERROR(cudnnCreate(&hs[size_t(device)]));
  *out = hs[size_t(device)];
  return ok_status();
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// The descriptors of one convolution, destroyed with the object.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  ~Descriptors() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }

  template <class T>
  Status make(const cpu::Conv2dShape& s) {
    const cudnnDataType_t dt = std::is_same_v<T, double> ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    const int64_t dims[] = {s.N,      s.C_in,     s.H,        s.W,       s.C_out,  s.kH,
                            s.kW,     s.H_out(),  s.W_out(),  s.pad_h,   s.pad_w,  s.stride_h,
                            s.stride_w, s.dil_h,  s.dil_w,    s.groups,  s.N * s.C_in * s.H * s.W,
                            s.N * s.C_out * s.H_out() * s.W_out()};
    for (int64_t d : dims)
      if (!fits_int(d)) return Status{"cuDNN convolution", "a size of 2^31 or more is not supported"};
    SH_CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&x));
    SH_CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&y));
    SH_CUDNN_RETURN_IF_ERROR(cudnnCreateFilterDescriptor(&w));
    SH_CUDNN_RETURN_IF_ERROR(cudnnCreateConvolutionDescriptor(&conv));
    SH_CUDNN_RETURN_IF_ERROR(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, dt, int(s.N),
                                                        int(s.C_in), int(s.H), int(s.W)));
    SH_CUDNN_RETURN_IF_ERROR(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, dt, int(s.N),
                                                        int(s.C_out), int(s.H_out()),
                                                        int(s.W_out())));
    SH_CUDNN_RETURN_IF_ERROR(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NCHW, int(s.C_out),
                                                        int(s.C_in / s.groups), int(s.kH),
                                                        int(s.kW)));
    // Cross-correlation, as PyTorch (and the CPU kernels) define convolution.
    SH_CUDNN_RETURN_IF_ERROR(cudnnSetConvolution2dDescriptor(
        conv, int(s.pad_h), int(s.pad_w), int(s.stride_h), int(s.stride_w), int(s.dil_h),
        int(s.dil_w), CUDNN_CROSS_CORRELATION, dt));
    SH_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionGroupCount(conv, int(s.groups)));
    // FMA only for float: TF32 tensor cores would round the inputs to 10 mantissa bits.
    SH_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
    return ok_status();
  }
};

// Everything a call needs: the handle bound to the stream, the descriptors, the lock.
struct Call {
  std::unique_lock<std::mutex> lock{handles_mu};
  cudnnHandle_t handle = nullptr;
  Descriptors d;

  template <class T>
  Status open(const cpu::Conv2dShape& s, cudaStream_t stream) {
    if (Status st = handle_for_current_device(&handle); !st.ok()) return st;
    SH_CUDNN_RETURN_IF_ERROR(cudnnSetStream(handle, stream));
    return d.make<T>(s);
  }
};

// Algorithms that sum the products as they are. FFT and Winograd ones transform the operands
// first, and their rounding error grows with the transform: in f32 up to about 1e-4 of the
// largest values, far beyond the direct sums of our kernels and of the CPU.
bool sums_directly(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}
bool sums_directly(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
bool sums_directly(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

// The fastest result that succeeded with an algorithm that sums directly (cuDNN sorts the
// results by time); best->found stays false when there is none.
template <class Perf>
Status pick(const Perf* perf, int returned, CudnnAlgo* best) {
  *best = CudnnAlgo{};
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || !sums_directly(perf[i].algo)) continue;
    best->found = true;
    best->algo = int(perf[i].algo);
    best->workspace_bytes = perf[i].memory;
    break;
  }
  return ok_status();
}

}  // namespace

template <class T>
Status cudnn_conv_find(ConvPass pass, const cpu::Conv2dShape& s, const ConvArrays<T>& a,
                       void* workspace, size_t workspace_bytes, CudnnAlgo* best,
                       cudaStream_t stream) {
  Call c;
  if (Status st = c.open<T>(s, stream); !st.ok()) return st;
  constexpr int kMaxAlgos = 16;  // more than cuDNN has for any pass
  int returned = 0;
  switch (pass) {
    case ConvPass::forward: {
      cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
      SH_CUDNN_RETURN_IF_ERROR(cudnnFindConvolutionForwardAlgorithmEx(
          c.handle, c.d.x, a.x, c.d.w, a.w, c.d.conv, c.d.y, a.y, kMaxAlgos, &returned, perf,
          workspace, workspace_bytes));
      return pick(perf, returned, best);
    }
    case ConvPass::backward_input: {
      cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
      SH_CUDNN_RETURN_IF_ERROR(cudnnFindConvolutionBackwardDataAlgorithmEx(
          c.handle, c.d.w, a.w, c.d.y, a.y, c.d.conv, c.d.x, a.x, kMaxAlgos, &returned, perf,
          workspace, workspace_bytes));
      return pick(perf, returned, best);
    }
    case ConvPass::backward_weight: {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
      SH_CUDNN_RETURN_IF_ERROR(cudnnFindConvolutionBackwardFilterAlgorithmEx(
          c.handle, c.d.x, a.x, c.d.y, a.y, c.d.conv, c.d.w, a.w, kMaxAlgos, &returned, perf,
          workspace, workspace_bytes));
      return pick(perf, returned, best);
    }
  }
  return Status{"cudnn_conv_find", "unknown pass"};
}

template <class T>
Status cudnn_conv_run(ConvPass pass, const cpu::Conv2dShape& s, const ConvArrays<T>& a,
                      const CudnnAlgo& algo, void* workspace, size_t workspace_bytes,
                      cudaStream_t stream) {
  Call c;
  if (Status st = c.open<T>(s, stream); !st.ok()) return st;
  using Scale = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const Scale one = 1, zero = 0;
  switch (pass) {
    case ConvPass::forward:
      SH_CUDNN_RETURN_IF_ERROR(cudnnConvolutionForward(
          c.handle, &one, c.d.x, a.x, c.d.w, a.w, c.d.conv, cudnnConvolutionFwdAlgo_t(algo.algo),
          workspace, workspace_bytes, &zero, c.d.y, a.y));
      return ok_status();
    case ConvPass::backward_input:
      SH_CUDNN_RETURN_IF_ERROR(cudnnConvolutionBackwardData(
          c.handle, &one, c.d.w, a.w, c.d.y, a.y, c.d.conv,
          cudnnConvolutionBwdDataAlgo_t(algo.algo), workspace, workspace_bytes, &zero, c.d.x, a.x));
      return ok_status();
    case ConvPass::backward_weight:
      SH_CUDNN_RETURN_IF_ERROR(cudnnConvolutionBackwardFilter(
          c.handle, &one, c.d.x, a.x, c.d.y, a.y, c.d.conv,
          cudnnConvolutionBwdFilterAlgo_t(algo.algo), workspace, workspace_bytes, &zero, c.d.w,
          a.w));
      return ok_status();
  }
  return Status{"cudnn_conv_run", "unknown pass"};
}

#else  // no cuDNN in this build

bool cudnn_built() { return false; }
size_t cudnn_version() { return 0; }

namespace {
Status no_cudnn() { return Status{"cuDNN convolution", "this build has no cuDNN"}; }
}  // namespace

template <class T>
Status cudnn_conv_find(ConvPass, const cpu::Conv2dShape&, const ConvArrays<T>&, void*, size_t,
                       CudnnAlgo*, cudaStream_t) {
  return no_cudnn();
}

template <class T>
Status cudnn_conv_run(ConvPass, const cpu::Conv2dShape&, const ConvArrays<T>&, const CudnnAlgo&,
                      void*, size_t, cudaStream_t) {
  return no_cudnn();
}

#endif

#define SH_INSTANTIATE(T)                                                                        \
  template Status cudnn_conv_find<T>(ConvPass, const cpu::Conv2dShape&, const ConvArrays<T>&,   \
                                     void*, size_t, CudnnAlgo*, cudaStream_t);                  \
  template Status cudnn_conv_run<T>(ConvPass, const cpu::Conv2dShape&, const ConvArrays<T>&,    \
                                    const CudnnAlgo&, void*, size_t, cudaStream_t);
SH_INSTANTIATE(float)
SH_INSTANTIATE(double)
#undef SH_INSTANTIATE

}  // namespace shallow::cuda
