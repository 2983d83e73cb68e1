// gemm_cublaslt (gemm_cublaslt.h): the cuBLAS product with bias and activation folded into
// cublasLtMatmul's epilogue. Per call: choose the epilogue (plan_for), find the device's handle
// and workspace, build the descriptors, look up (or ask the heuristic for) the algorithm, run.
// Any refusal along the way declines before anything is queued.
#include "kernels/cuda/gemm_cublaslt.h"

#include <cublasLt.h>

#include <array>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "kernels/cuda/gemm_kernels.cuh"

namespace shallow::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

// SHALLOW_CUDA_CUBLASLT=0 in the environment switches the path off for the whole process;
// set_cublaslt_allowed() changes it afterwards.
bool allowed_by_environment() {
  const char* v = std::getenv("SHALLOW_CUDA_CUBLASLT");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

std::atomic<bool> g_allowed{allowed_by_environment()};
std::atomic<bool> g_relu_epilogue{false};
std::atomic<uint64_t> g_count{0};

// ---- which epilogue

struct Plan {
  cublasLtEpilogue_t epilogue;
  GemmActivation pass_act;  // what the separate pass applies afterwards (none: nothing)
};

// The cuBLASLt epilogue for ours, or nothing when folding gains nothing or cannot be exact.
template <class T>
std::optional<Plan> plan_for(const cpu::GemmEpilogue<T>& ep) {
  const bool bias = ep.bias != nullptr;
  if (bias && ep.bias_per_row) return std::nullopt;  // per column of D: no such epilogue
  switch (ep.act) {
    case GemmActivation::none:
      if (bias) return Plan{CUBLASLT_EPILOGUE_BIAS, GemmActivation::none};
      return std::nullopt;
    case GemmActivation::gelu_tanh:  // cuBLASLt's GELU is the tanh approximation; its
      // accuracy is documented for none of the types: folded only where the result is
      // rounded to bf16, f32 keeps the exact pass
      if constexpr (std::is_same_v<T, bf16>)
        return Plan{bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU,
                    GemmActivation::none};
      break;
    case GemmActivation::relu:
      if (g_relu_epilogue.load())
        return Plan{bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU,
                    GemmActivation::none};
      break;
    case GemmActivation::gelu:
    case GemmActivation::quick_gelu:
      break;
  }
  // The activation has no exact cuBLASLt form: fold the bias, leave the activation to the pass.
  if (bias) return Plan{CUBLASLT_EPILOGUE_BIAS, ep.act};
  return std::nullopt;
}

// ---- the handle and workspace of a device, kept for the process

std::mutex g_mu;  // guards the maps below

// Never destroyed, like the engine's cuBLAS handles: they must outlive static tensors, and
// tearing them down after the CUDA runtime has shut down at exit would fail.
std::map<int, cublasLtHandle_t>& handles() {
  static auto* m = new std::map<int, cublasLtHandle_t>;
  return *m;
}
// One workspace per device and stream: two streams must not share scratch memory.
std::map<std::pair<int, cudaStream_t>, void*>& workspaces() {
  static auto* m = new std::map<std::pair<int, cudaStream_t>, void*>;
  return *m;
}

// The handle and workspace for the current device and `stream`; false when either cannot be
// had (a failed cudaMalloc is tried again at the next call).
bool resources_for(int device, cudaStream_t stream, cublasLtHandle_t* handle, void** workspace) {
  std::lock_guard<std::mutex> lock(g_mu);
  cublasLtHandle_t& h = handles()[device];
  if (h == nullptr && cublasLtCreate(&h) != CUBLAS_STATUS_SUCCESS) {
    h = nullptr;
    return false;
  }
  void*& w = workspaces()[{device, stream}];
  if (w == nullptr && cudaMalloc(&w, kWorkspaceBytes) != cudaSuccess) {
    cudaGetLastError();  // out of memory is a refusal here, not an error for the next launch
    w = nullptr;
    return false;
  }
  *handle = h;
  *workspace = w;
  return true;
}

// ---- descriptors

template <class T> constexpr cudaDataType_t lt_type() {
  return std::is_same_v<T, bf16> ? CUDA_R_16BF : CUDA_R_32F;
}

// The descriptors of one call, destroyed with it (creating them is cheap host work).
struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;  // cuBLASLt's A, B, C (= D)
  cublasLtMatmulPreference_t pref = nullptr;
  Descriptors() = default;
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
  ~Descriptors() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

bool ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }

template <class V>
bool set_op(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const V& v) {
  return ok(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof v));
}
template <class V>
bool set_layout(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr, const V& v) {
  return ok(cublasLtMatrixLayoutSetAttribute(l, attr, &v, sizeof v));
}
template <class V>
bool set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr,
              const V& v) {
  return ok(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof v));
}

// A column-major layout of `count` matrices rows x cols, `stride` elements apart.
bool make_layout(cublasLtMatrixLayout_t* l, cudaDataType_t type, int64_t rows, int64_t cols,
                 int64_t ld, int64_t count, int64_t stride) {
  if (!ok(cublasLtMatrixLayoutCreate(l, type, uint64_t(rows), uint64_t(cols), ld))) return false;
  if (count == 1) return true;
  return set_layout(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, int32_t(count)) &&
         set_layout(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, stride);
}

// The largest power of two up to 256 that divides the address of every matrix of an operand:
// what the heuristic may assume (its default, 256, would pick algorithms that need it).
uint32_t alignment_of(const void* p, int64_t count, int64_t stride, size_t elem_size) {
  const uint64_t bits =
      uint64_t(reinterpret_cast<uintptr_t>(p)) | (count > 1 ? uint64_t(stride) * elem_size : 0);
  uint32_t a = 256;
  while (a > 1 && bits % a != 0) a /= 2;
  return a;
}

// ---- the algorithms found, per shape

using AlgoKey = std::array<int64_t, 19>;

std::map<AlgoKey, std::optional<cublasLtMatmulAlgo_t>>& algos() {
  static auto* m = new std::map<AlgoKey, std::optional<cublasLtMatmulAlgo_t>>;
  return *m;
}
constexpr size_t kMaxAlgos = 4096;  // distinct shapes remembered; beyond, start over

void remember(const AlgoKey& key, const std::optional<cublasLtMatmulAlgo_t>& algo) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (algos().size() >= kMaxAlgos) algos().clear();
  algos()[key] = algo;
}

// A refusal of cublasLtMatmul (nothing was launched) rather than a failure while running.
bool is_refusal(cublasStatus_t s) {
  return s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_INVALID_VALUE ||
         s == CUBLAS_STATUS_ARCH_MISMATCH;
}

// What the heuristic said: its first algorithm, or none; `lasting` unless the call itself
// failed for a passing reason (out of memory), which is not remembered.
struct HeuristicAnswer {
  std::optional<cublasLtMatmulAlgo_t> algo;
  bool lasting = true;
};

HeuristicAnswer ask_heuristic(cublasLtHandle_t handle, const Descriptors& d) {
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, d.op, d.a, d.b, d.c, d.c,
                                                           d.pref, 1, &result, &found);
  HeuristicAnswer answer;
  if (!ok(st)) {
    answer.lasting = is_refusal(st);
    return answer;
  }
  if (found >= 1 && ok(result.state) && result.workspaceSize <= kWorkspaceBytes)
    answer.algo = result.algo;
  return answer;
}

}  // namespace

void set_cublaslt_allowed(bool allowed) { g_allowed.store(allowed); }
bool cublaslt_allowed() { return g_allowed.load(); }
void set_cublaslt_relu_epilogue(bool allowed) { g_relu_epilogue.store(allowed); }
bool cublaslt_relu_epilogue() { return g_relu_epilogue.load(); }
uint64_t cublaslt_gemm_count() { return g_count.load(); }

template <class T>
CublasLtAttempt gemm_cublaslt(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N,
                              int64_t K, gemm_scale_t<T> alpha, const T* A, int64_t lda,
                              int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b,
                              gemm_scale_t<T> beta, T* C, int64_t ldc, int64_t stride_c,
                              cudaStream_t stream, const cpu::GemmEpilogue<T>& epilogue) {
  const CublasLtAttempt declined;
  if constexpr (std::is_same_v<T, double>) {
    return declined;
  } else {
    if (!cublaslt_allowed() || batch < 1 || batch > INT_MAX || M < 1 || N < 1 || K < 1)
      return declined;
    const std::optional<Plan> plan = plan_for(epilogue);
    if (!plan) return declined;
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
      cudaGetLastError();
      return declined;
    }
    cublasLtHandle_t handle = nullptr;
    void* workspace = nullptr;
    if (!resources_for(device, stream, &handle, &workspace)) return declined;

    // As in gemm_cublas: C^T = op(B)^T op(A)^T in column-major terms, so cuBLASLt's A is our
    // B (stored N x K column-major, or K x N when transposed), its B our A, its D (N x M) our C.
    const cudaDataType_t type = lt_type<T>();
    Descriptors d;
    const int32_t op_a = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int32_t op_b = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    bool built = ok(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F)) &&
                 set_op(d.op, CUBLASLT_MATMUL_DESC_TRANSA, op_a) &&
                 set_op(d.op, CUBLASLT_MATMUL_DESC_TRANSB, op_b) &&
                 set_op(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, plan->epilogue);
    if (built && epilogue.bias != nullptr) {
      const void* bias = epilogue.bias;  // same bias for every matrix: batch stride 0
      built = set_op(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias) &&
              set_op(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, int32_t(type));
    }
    built = built &&
            make_layout(&d.a, type, trans_b ? K : N, trans_b ? N : K, ldb, batch, stride_b) &&
            make_layout(&d.b, type, trans_a ? M : K, trans_a ? K : M, lda, batch, stride_a) &&
            make_layout(&d.c, type, N, M, ldc, batch, stride_c);
    const uint32_t align_a = alignment_of(B, batch, stride_b, sizeof(T));
    const uint32_t align_b = alignment_of(A, batch, stride_a, sizeof(T));
    const uint32_t align_c = alignment_of(C, batch, stride_c, sizeof(T));
    built = built && ok(cublasLtMatmulPreferenceCreate(&d.pref)) &&
            set_pref(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(kWorkspaceBytes)) &&
            set_pref(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a) &&
            set_pref(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b) &&
            set_pref(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c) &&
            set_pref(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c);
    if (!built) return declined;

    // The heuristic also reads the bias pointer's alignment: part of the key.
    const AlgoKey key{device, int64_t(type), trans_a, trans_b, M, N, K, lda, ldb, ldc, batch,
                      batch > 1 ? stride_a : 0, batch > 1 ? stride_b : 0,
                      batch > 1 ? stride_c : 0, int64_t(plan->epilogue), align_a, align_b,
                      align_c, alignment_of(epilogue.bias, 1, 0, 1)};
    std::optional<cublasLtMatmulAlgo_t> algo;
    bool known = false;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      auto it = algos().find(key);
      if (it != algos().end()) {
        known = true;
        algo = it->second;
      }
    }
    if (!known) {
      const HeuristicAnswer answer = ask_heuristic(handle, d);
      algo = answer.algo;
      if (answer.lasting) remember(key, algo);
    }
    if (!algo) return declined;

    const float alpha_f = float(alpha), beta_f = float(beta);
    const cublasStatus_t st =
        cublasLtMatmul(handle, d.op, &alpha_f, B, d.a, A, d.b, &beta_f, C, d.c, C, d.c, &*algo,
                       workspace, kWorkspaceBytes, stream);
    if (is_refusal(st)) {
      remember(key, std::nullopt);  // it would refuse again: decline at once next time
      return declined;
    }
    CublasLtAttempt done;
    done.ran = true;
    if (!ok(st)) {
      done.status = Status{"cublasLtMatmul", cublasGetStatusString(st)};
      return done;
    }
    g_count.fetch_add(1);
    if (plan->pass_act != GemmActivation::none)
      done.status = gemm_bias_act<T>(batch, M, N, C, ldc, stride_c, nullptr, false,
                                     plan->pass_act, stream);
    return done;
  }
}

#define SH_GEMM_CUBLASLT_INSTANTIATE(T)                                                          \
  template CublasLtAttempt gemm_cublaslt<T>(int64_t, bool, bool, int64_t, int64_t, int64_t,      \
                                            gemm_scale_t<T>, const T*, int64_t, int64_t,         \
                                            const T*, int64_t, int64_t, gemm_scale_t<T>, T*,     \
                                            int64_t, int64_t, cudaStream_t,                      \
                                            const cpu::GemmEpilogue<T>&);
SH_GEMM_CUBLASLT_INSTANTIATE(float)
SH_GEMM_CUBLASLT_INSTANTIATE(double)
SH_GEMM_CUBLASLT_INSTANTIATE(bf16)

}  // namespace shallow::cuda
