#include "engine/optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "engine/cuda/optim_ops.h"
#include "kernels/cpu/optim.h"

namespace shallow::optim {

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type) {
  SH_CHECK(norm_type > 0, "clip_grad_norm_: norm_type must be > 0 (or infinity), got ", norm_type);
  SH_CHECK(max_norm >= 0, "clip_grad_norm_: max_norm must be >= 0, got ", max_norm);
  const bool inf = std::isinf(norm_type);
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined()) continue;
    SH_CHECK(g.dtype() == DType::f32 || g.dtype() == DType::f64,
             "clip_grad_norm_: gradients must be f32 or f64, got ", dtype_name(g.dtype()), " ",
             shape_str(g.shape()));
    if (!g.is_contiguous()) {  // scaled in place below: give the parameter an owned copy
      g = g.contiguous();
      Tensor(p).set_grad(g);
    }
    grads.push_back(g);
  }
  if (grads.empty()) return 0.0;

  // Per gradient, sum |g|^p (or max |g|): CPU gradients here, CUDA ones on their device, all of
  // a device's results read back in one copy.
  std::vector<double> pieces(grads.size(), 0.0);
  std::vector<Tensor> on_gpu;
  std::vector<size_t> gpu_positions;
  for (size_t i = 0; i < grads.size(); ++i) {
    const Tensor& g = grads[i];
    if (g.device().is_cuda()) {
      on_gpu.push_back(g);
      gpu_positions.push_back(i);
      continue;
    }
    pieces[i] = SH_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm_", [&] {
      const scalar_t* x = g.data<scalar_t>();
      return inf ? cpu::max_abs(g.numel(), x) : cpu::sum_abs_pow(g.numel(), x, norm_type);
    });
  }
  if (!on_gpu.empty()) {
    const std::vector<double> sums = gpu::abs_pow_sums(on_gpu, norm_type, "clip_grad_norm_");
    for (size_t k = 0; k < sums.size(); ++k) pieces[gpu_positions[k]] = sums[k];
  }

  // The norm of the per-gradient norms, as PyTorch computes it.
  double total = 0;
  for (double piece : pieces) {
    const double n = inf ? piece : std::pow(piece, 1.0 / norm_type);
    total = inf ? (std::isnan(n) ? n : std::max(total, n)) : total + std::pow(n, norm_type);
  }
  if (!inf) total = std::pow(total, 1.0 / norm_type);

  const double coef = std::min(1.0, max_norm / (total + 1e-6));
  for (Tensor& g : grads) {
    if (g.device().is_cuda()) {
      gpu::scale_inplace(g, coef, "clip_grad_norm_");
      continue;
    }
    SH_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm_", [&] {
      cpu::scale_inplace(g.numel(), g.data<scalar_t>(), coef);
    });
  }
  return total;
}

}  // namespace shallow::optim
