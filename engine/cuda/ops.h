#pragma once
// The CUDA side of the engine's ops: each function takes tensors the op has already checked
// and prepared (one CUDA device; f32 or f64 unless said; contiguous unless said), queues the
// kernel of kernels/cuda/ on the device's stream, and throws shallow::Error naming the op and
// the failing CUDA call if there is one. The ops in engine/ops/*.cpp call these where a tensor
// is on a CUDA device, and the CPU kernels otherwise.
//
// Declared in every build; without CUDA (engine/cuda/without_cuda.cpp) they throw, but they
// are never reached there, because no tensor can be on a CUDA device.
#include "engine/tensor.h"
#include "kernels/cpu/binary.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/unary.h"

namespace shallow::gpu {

// dst = src (src already expanded to dst's shape), any layouts and dtypes, between any two
// devices of which at least one is CUDA. Host <-> device copies go through pinned staging
// buffers and are complete when the function returns.
void copy(const Tensor& src, Tensor& dst);
// Every element of a contiguous CUDA tensor = value (converted as static_cast does).
void fill(Tensor& t, double value);

// unary (forward), binary and layer_norm (forward) also take bf16/f16 tensors, computed in f32
// and rounded once (layer_norm's mean and rstd are then f32): the ops use this when nothing is
// recorded for autograd, which spares the conversions around each op in bf16 inference.
void unary(cpu::UnaryOp op, const Tensor& x, Tensor& y, cpu::UnaryParams p, const char* name);
void unary_backward(cpu::UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy,
                    Tensor& gx, cpu::UnaryParams p, const char* name);

// a and b are expanded to out's shape (any strides); out is contiguous.
void binary(cpu::BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, const char* name);

// x is a contiguous [outer, n, inner] block, y [outer, inner]; index (i64) may be undefined.
void reduce(cpu::ReduceOp op, int64_t outer, int64_t n, int64_t inner, const Tensor& x, Tensor& y,
            const Tensor& index, const char* name);

void softmax(int64_t outer, int64_t n, int64_t inner, const Tensor& x, Tensor& y, bool log,
             const char* name);
void softmax_backward(int64_t outer, int64_t n, int64_t inner, const Tensor& y, const Tensor& gy,
                      Tensor& gx, bool log, const char* name);

// weight, bias, gx, gweight, gbias may be undefined.
void layer_norm(int64_t rows, int64_t n, const Tensor& x, const Tensor& weight,
                const Tensor& bias, double eps, Tensor& y, Tensor& mean, Tensor& rstd,
                const char* name);
void layer_norm_backward(int64_t rows, int64_t n, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, const Tensor& gy, Tensor& gx,
                         Tensor& gweight, Tensor& gbias, const char* name);

// out[b] = op(a[b]) @ op(b[b]) for row-major matrices read in place from a and b (their
// raw_data(), with the given row strides and batch strides); out contiguous [batch, M, N].
// f32, f64 and bf16 (f32 accumulation). Uses cuBLAS or the tiled kernel per cuda_gemm().
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  const Tensor& a, int64_t lda, int64_t stride_a, const Tensor& b, int64_t ldb,
                  int64_t stride_b, Tensor& out, const char* name);

// The fused Adam/AdamW step of cpu::adam_update, in place; max_exp_avg_sq may be undefined
// (it must be given with amsgrad).
void adam_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                 Tensor& max_exp_avg_sq, const cpu::AdamHyper& h, const char* name);

}  // namespace shallow::gpu
