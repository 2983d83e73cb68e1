#pragma once
// Shared by the CUDA tests: the skip on machines without a GPU, and "the same op on the GPU
// gives the CPU's values and gradients". The CPU ops are the reference: each is checked against
// PyTorch and by finite differences in tests/engine.
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/cuda/api.h"
#include "engine/ops.h"
#include "tests/support/errors.h"
#include "tests/support/fixtures.h"

namespace shallow::testing {

// First statement of every CUDA test.
#define SKIP_WITHOUT_CUDA()                                   \
  do {                                                        \
    if (!::shallow::cuda_available()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

inline Device gpu() { return Device::cuda(0); }

// Tolerances of a CUDA result against the CPU's, by dtype. Kernels sum in another order and
// the GPU's erf/exp/tanh may differ from the C library's by an ulp or two.
struct Tol {
  double atol, rtol;
};
inline Tol tol_for(DType t) {
  switch (t) {
    case DType::f64: return {1e-12, 1e-10};
    case DType::f32: return {2e-5, 2e-4};
    default: return {2e-2, 2e-2};  // bf16, f16: one rounding step of 2^-8 relative
  }
}

// A random tensor on the CPU, values in [low, high), deterministic per seed.
inline Tensor cpu_rand(const Shape& shape, DType dtype, uint64_t seed, double low = -2.0,
                       double high = 2.0) {
  Generator g(seed);
  return uniform(shape, low, high, DType::f64, &g).to(dtype);
}

using GpuFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs fn on copies of the inputs on the CPU and on the GPU (leaves that require grad when
// `backward`), backpropagates the same random output gradient through both, and compares the
// outputs and every input gradient. Non-contiguous cases make their views inside fn.
inline void expect_gpu_matches_cpu(const GpuFn& fn, const std::vector<Tensor>& inputs, Tol tol,
                                   bool backward = true, const std::string& what = "") {
  SCOPED_TRACE(what);
  std::vector<Tensor> on_cpu, on_gpu;
  for (const Tensor& t : inputs) {
    Tensor c = t.detach().clone();
    Tensor g = t.detach().to(gpu());
    if (backward && is_floating(t.dtype())) {
      c.set_requires_grad();
      g.set_requires_grad();
    }
    on_cpu.push_back(c);
    on_gpu.push_back(g);
  }
  Tensor out_cpu = fn(on_cpu);
  Tensor out_gpu = fn(on_gpu);
  ASSERT_EQ(out_gpu.device(), gpu());
  ASSERT_EQ(out_gpu.dtype(), out_cpu.dtype());
  EXPECT_TRUE(all_close(out_gpu, out_cpu, tol.atol, tol.rtol)) << "forward";
  if (!backward) return;
  Tensor seed = cpu_rand(out_cpu.shape(), out_cpu.dtype(), 1234);
  out_cpu.backward(seed);
  out_gpu.backward(seed.to(gpu()));
  cuda_synchronize();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!on_cpu[i].requires_grad()) continue;
    ASSERT_TRUE(on_gpu[i].grad().defined()) << "no gradient for input " << i;
    EXPECT_EQ(on_gpu[i].grad().device(), gpu());
    EXPECT_TRUE(all_close(on_gpu[i].grad(), on_cpu[i].grad(), tol.atol, tol.rtol))
        << "gradient of input " << i;
  }
}

// A test run once per GEMM implementation (its parameter), the setting restored after.
class GemmBackendTest : public ::testing::TestWithParam<CudaGemm> {
 protected:
  void SetUp() override {
    previous_ = cuda_gemm();
    set_cuda_gemm(GetParam());
  }
  void TearDown() override { set_cuda_gemm(previous_); }
  CudaGemm previous_ = CudaGemm::cublas;
};

}  // namespace shallow::testing
