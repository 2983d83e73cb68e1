// scaled_dot_product_attention on CUDA against the CPU op (itself checked against PyTorch and by
// finite differences in tests/engine/test_attention*.cpp), forward and the three gradients.
// The fused kernels (f32 and bf16, no mask) at lengths on both sides of the 64-row and 64-key
// tiles, head dims 32, 64, 80 and 128, causal or not, operands read in place from [B, S, H, D]
// layouts; then the cases that go through the unfused ops (masks, f64, f16, other head dims).
#include <cmath>
#include <cstdlib>
#include <limits>

#include "tests/gpu/gpu_test.h"

namespace shallow::testing {
namespace {

// q, k, v made as [B, S, H, D] (as a projection leaves them) and read as [B, H, S, D]: the rows
// are contiguous but heads sit H * D apart, so the kernels take them in place.
Tensor attention_of_bshd(const std::vector<Tensor>& t, bool causal,
                         std::optional<double> scale = std::nullopt) {
  return scaled_dot_product_attention(t[0].transpose(1, 2), t[1].transpose(1, 2),
                                      t[2].transpose(1, 2), Tensor(), causal, scale);
}

std::string case_name(DType dt, int64_t Lq, int64_t Lk, int64_t D, bool causal) {
  return str_cat(dtype_name(dt), " Lq ", Lq, " Lk ", Lk, " D ", D, causal ? " causal" : "");
}

TEST(GpuAttention, FusedMatchesCpuAcrossTileEdges) {
  SKIP_WITHOUT_CUDA();
  const std::vector<std::pair<int64_t, int64_t>> lengths = {
      {1, 1},   {63, 63},  {64, 64},   {65, 65},  {197, 197}, {257, 257},
      {1, 197}, {63, 257}, {197, 65},  {257, 64}, {65, 1},    {64, 63}};
  uint64_t seed = 100;
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t D : {32, 64, 80})
      for (bool causal : {false, true})
        for (auto [Lq, Lk] : lengths) {
          const int64_t B = 2, H = 3;
          // Values in [-1, 1): scores of order one, so that the softmax is neither flat nor one-hot.
          const Tensor q = cpu_rand({B, Lq, H, D}, dt, ++seed, -1, 1);
          const Tensor k = cpu_rand({B, Lk, H, D}, dt, ++seed, -1, 1);
          const Tensor v = cpu_rand({B, Lk, H, D}, dt, ++seed, -1, 1);
          auto f = [&](const std::vector<Tensor>& t) { return attention_of_bshd(t, causal); };
          expect_gpu_matches_cpu(f, {q, k, v}, tol_for(dt), true, case_name(dt, Lq, Lk, D, causal));
        }
}

TEST(GpuAttention, FusedHeadDimsUpTo128AndScale) {
  SKIP_WITHOUT_CUDA();
  uint64_t seed = 200;
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t D : {1, 8, 16, 24, 48, 96, 100, 128})
      for (bool causal : {false, true}) {
        const Tensor q = cpu_rand({1, 70, 2, D}, dt, ++seed, -1, 1);
        const Tensor k = cpu_rand({1, 130, 2, D}, dt, ++seed, -1, 1);
        const Tensor v = cpu_rand({1, 130, 2, D}, dt, ++seed, -1, 1);
        auto f = [&](const std::vector<Tensor>& t) { return attention_of_bshd(t, causal, 0.3); };
        expect_gpu_matches_cpu(f, {q, k, v}, tol_for(dt), true, case_name(dt, 70, 130, D, causal));
      }
}

// bf16 and f32 on the FMA tiles, the path of GPUs older than sm_80 (SHALLOW_CUDA_ATTENTION=simt;
// on newer ones the f32 forward runs on tensor cores where it can).
TEST(GpuAttention, FmaTilesForBf16AndF32) {
  SKIP_WITHOUT_CUDA();
  ::setenv("SHALLOW_CUDA_ATTENTION", "simt", 1);
  uint64_t seed = 300;
  for (DType dt : {DType::bf16, DType::f32})
    for (int64_t D : {32, 64, 80})
      for (bool causal : {false, true})
        for (auto [Lq, Lk] : std::vector<std::pair<int64_t, int64_t>>{{65, 65}, {63, 197}, {130, 1}}) {
          const Tensor q = cpu_rand({2, Lq, 2, D}, dt, ++seed, -1, 1);
          const Tensor k = cpu_rand({2, Lk, 2, D}, dt, ++seed, -1, 1);
          const Tensor v = cpu_rand({2, Lk, 2, D}, dt, ++seed, -1, 1);
          auto f = [&](const std::vector<Tensor>& t) { return attention_of_bshd(t, causal); };
          expect_gpu_matches_cpu(f, {q, k, v}, tol_for(dt), true,
                                 "simt " + case_name(dt, Lq, Lk, D, causal));
        }
  ::unsetenv("SHALLOW_CUDA_ATTENTION");
}

// The f32 forward on tensor cores (three TF32 products per product, attention_tf32.cu) keeps
// f32's tolerance with large scores too (values in [-4, 4): scores of order 5 after the scale),
// at both of its head-dim paddings (32, 64), over several key tiles with a partial last one.
// Forward only: the backward (FMA tiles) from its log-sum-exp is checked by the tests above.
TEST(GpuAttention, F32OnTensorCoresKeepsF32Accuracy) {
  SKIP_WITHOUT_CUDA();
  uint64_t seed = 350;
  for (int64_t D : {20, 32, 48, 64})
    for (bool causal : {false, true})
      for (auto [Lq, Lk] : std::vector<std::pair<int64_t, int64_t>>{{197, 197}, {64, 300}, {129, 8}}) {
        const Tensor q = cpu_rand({2, Lq, 3, D}, DType::f32, ++seed, -4, 4);
        const Tensor k = cpu_rand({2, Lk, 3, D}, DType::f32, ++seed, -4, 4);
        const Tensor v = cpu_rand({2, Lk, 3, D}, DType::f32, ++seed, -4, 4);
        auto f = [&](const std::vector<Tensor>& t) { return attention_of_bshd(t, causal); };
        expect_gpu_matches_cpu(f, {q, k, v}, tol_for(DType::f32), false,
                               "tf32x3 " + case_name(DType::f32, Lq, Lk, D, causal));
      }
}

// bf16 forward and backward on the first tensor-core kernels (SHALLOW_CUDA_ATTENTION=mma_v1),
// kept beside the pipelined ones (the default for 16-byte aligned operands, which the other
// tests take).
TEST(GpuAttention, Bf16OnFirstMmaKernel) {
  SKIP_WITHOUT_CUDA();
  ::setenv("SHALLOW_CUDA_ATTENTION", "mma_v1", 1);
  uint64_t seed = 350;
  for (int64_t D : {32, 64, 80, 128})
    for (bool causal : {false, true})
      for (auto [Lq, Lk] : std::vector<std::pair<int64_t, int64_t>>{{65, 65}, {197, 197}, {130, 1}}) {
        const Tensor q = cpu_rand({2, Lq, 2, D}, DType::bf16, ++seed, -1, 1);
        const Tensor k = cpu_rand({2, Lk, 2, D}, DType::bf16, ++seed, -1, 1);
        const Tensor v = cpu_rand({2, Lk, 2, D}, DType::bf16, ++seed, -1, 1);
        auto f = [&](const std::vector<Tensor>& t) { return attention_of_bshd(t, causal); };
        expect_gpu_matches_cpu(f, {q, k, v}, tol_for(DType::bf16), true,
                               "mma_v1 " + case_name(DType::bf16, Lq, Lk, D, causal));
      }
  ::unsetenv("SHALLOW_CUDA_ATTENTION");
}

// bf16 forward on the pipelined kernel with 32 query rows per warp (SHALLOW_CUDA_ATTENTION=mma_r2):
// blocks of 128 rows, several per sequence at Lq = 300, the last partly past Lq; D = 80 and 128
// take the 16-row kernel.
TEST(GpuAttention, Bf16PipelinedTwoSlicesPerWarp) {
  SKIP_WITHOUT_CUDA();
  ::setenv("SHALLOW_CUDA_ATTENTION", "mma_r2", 1);
  uint64_t seed = 380;
  for (int64_t D : {32, 64, 80})
    for (bool causal : {false, true})
      for (auto [Lq, Lk] : std::vector<std::pair<int64_t, int64_t>>{{65, 65}, {197, 197}, {300, 77}, {130, 1}}) {
        const Tensor q = cpu_rand({2, Lq, 2, D}, DType::bf16, ++seed, -1, 1);
        const Tensor k = cpu_rand({2, Lk, 2, D}, DType::bf16, ++seed, -1, 1);
        const Tensor v = cpu_rand({2, Lk, 2, D}, DType::bf16, ++seed, -1, 1);
        auto f = [&](const std::vector<Tensor>& t) { return attention_of_bshd(t, causal); };
        expect_gpu_matches_cpu(f, {q, k, v}, tol_for(DType::bf16), true,
                               "mma_r2 " + case_name(DType::bf16, Lq, Lk, D, causal));
      }
  ::unsetenv("SHALLOW_CUDA_ATTENTION");
}

// Layouts the kernels read in place or copy first: contiguous [B, H, L, D]; q, k and v cut out
// of one fused [B, L, 3, H, D] projection; rows one element off 16-byte alignment (the
// element-wise loads); batch dims that do not fold into two strided levels (a copy); and
// operands broadcast over batch entries (their gradients summed back).
TEST(GpuAttention, FusedOperandLayouts) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::f32, DType::bf16}) {
    const Tol tol = tol_for(dt);
    const Tensor q = cpu_rand({2, 3, 67, 64}, dt, 1, -1, 1), k = cpu_rand({2, 3, 90, 64}, dt, 2, -1, 1),
                 v = cpu_rand({2, 3, 90, 64}, dt, 3, -1, 1);
    auto plain = [](const std::vector<Tensor>& t) { return scaled_dot_product_attention(t[0], t[1], t[2]); };
    expect_gpu_matches_cpu(plain, {q, k, v}, tol, true, str_cat("contiguous ", dtype_name(dt)));

    const Tensor qkv = cpu_rand({2, 75, 3, 4, 32}, dt, 4, -1, 1);
    auto fused_projection = [](const std::vector<Tensor>& t) {
      return scaled_dot_product_attention(t[0].select(2, 0).transpose(1, 2),
                                          t[0].select(2, 1).transpose(1, 2),
                                          t[0].select(2, 2).transpose(1, 2), Tensor(), true);
    };
    expect_gpu_matches_cpu(fused_projection, {qkv}, tol, true, str_cat("qkv split ", dtype_name(dt)));

    const Tensor wide = cpu_rand({2, 2, 66, 41}, dt, 5, -1, 1);
    auto unaligned = [](const std::vector<Tensor>& t) {
      const Tensor x = t[0].slice(-1, 1, 41);  // rows 41 elements apart, starting one element in
      return scaled_dot_product_attention(x, x.slice(-2, 0, 50), x.slice(-2, 16, 66));
    };
    expect_gpu_matches_cpu(unaligned, {wide}, tol, true, str_cat("unaligned rows ", dtype_name(dt)));

    const Tensor q5 = cpu_rand({3, 2, 2, 33, 32}, dt, 6, -1, 1);
    auto unfoldable = [](const std::vector<Tensor>& t) {
      const Tensor x = t[0].permute({1, 0, 2, 3, 4});  // batch strides that step unevenly
      return scaled_dot_product_attention(x, x, x);
    };
    expect_gpu_matches_cpu(unfoldable, {q5}, tol, true, str_cat("five dims ", dtype_name(dt)));

    const Tensor qb = cpu_rand({2, 3, 70, 32}, dt, 7, -1, 1), kb = cpu_rand({3, 80, 32}, dt, 8, -1, 1),
                 vb = cpu_rand({1, 1, 80, 32}, dt, 9, -1, 1);
    auto broadcast = [](const std::vector<Tensor>& t) { return scaled_dot_product_attention(t[0], t[1], t[2]); };
    expect_gpu_matches_cpu(broadcast, {qb, kb, vb}, tol, true, str_cat("broadcast ", dtype_name(dt)));
  }
}

// More batch entries than a grid's y or z dimension could hold (65535): blocks are numbered
// along x.
TEST(GpuAttention, FusedManyBatchEntries) {
  SKIP_WITHOUT_CUDA();
  const Tensor q = cpu_rand({70000, 2, 32}, DType::f32, 1, -1, 1);
  const Tensor k = cpu_rand({70000, 3, 32}, DType::f32, 2, -1, 1);
  const Tensor v = cpu_rand({70000, 3, 32}, DType::f32, 3, -1, 1);
  auto f = [](const std::vector<Tensor>& t) { return scaled_dot_product_attention(t[0], t[1], t[2]); };
  expect_gpu_matches_cpu(f, {q, k, v}, tol_for(DType::f32), true, "70000 batch entries");
}

// Keys' and queries' gradients come from separate passes without atomics: two backwards give
// the same bits; and a gradient that is not asked for is not made.
TEST(GpuAttention, FusedBackwardIsDeterministicAndSkipsUnneededGradients) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::f32, DType::bf16}) {
    const Tensor q = cpu_rand({2, 2, 150, 64}, dt, 1).to(gpu()), k = cpu_rand({2, 2, 140, 64}, dt, 2).to(gpu()),
                 v = cpu_rand({2, 2, 140, 64}, dt, 3).to(gpu());
    const Tensor seed = cpu_rand({2, 2, 150, 64}, dt, 4).to(gpu());
    auto grads = [&] {
      Tensor ql = q.clone().set_requires_grad(true), kl = k.clone().set_requires_grad(true),
             vl = v.clone().set_requires_grad(true);
      scaled_dot_product_attention(ql, kl, vl, Tensor(), true).backward(seed);
      return std::vector<Tensor>{ql.grad(), kl.grad(), vl.grad()};
    };
    const auto first = grads(), second = grads();
    for (size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(all_close(first[i], second[i], 0, 0)) << dtype_name(dt) << " gradient " << i;

    Tensor kl = k.clone().set_requires_grad(true);
    scaled_dot_product_attention(q, kl, v).backward(seed);
    Tensor kc = k.to(Device::cpu()).set_requires_grad(true);
    scaled_dot_product_attention(q.to(Device::cpu()), kc, v.to(Device::cpu())).backward(seed.to(Device::cpu()));
    EXPECT_TRUE(all_close(kl.grad(), kc.grad(), tol_for(dt).atol, tol_for(dt).rtol)) << dtype_name(dt);
    EXPECT_FALSE(q.grad().defined());
  }
}

// No keys: zeros and a zero query gradient, as on the CPU. No queries: empty output, zero key
// and value gradients.
TEST(GpuAttention, FusedEmptyLengths) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::f32, DType::bf16}) {
    auto f = [](const std::vector<Tensor>& t) { return scaled_dot_product_attention(t[0], t[1], t[2]); };
    expect_gpu_matches_cpu(f, {cpu_rand({2, 5, 32}, dt, 1), cpu_rand({2, 0, 32}, dt, 2), cpu_rand({2, 0, 32}, dt, 3)},
                           tol_for(dt), true, str_cat("Lk 0 ", dtype_name(dt)));
    expect_gpu_matches_cpu(f, {cpu_rand({2, 0, 32}, dt, 1), cpu_rand({2, 5, 32}, dt, 2), cpu_rand({2, 5, 32}, dt, 3)},
                           tol_for(dt), true, str_cat("Lq 0 ", dtype_name(dt)));
  }
}

// Cases the fused kernels do not take run on the unfused ops: masks (u8 and additive, with a
// fully masked row, alone and with is_causal), f64, f16, different head dims for keys and
// values, head dims above 128.
TEST(GpuAttention, UnfusedCasesMatchCpu) {
  SKIP_WITHOUT_CUDA();
  Tensor keep = Tensor::ones({2, 1, 37, 45}, DType::u8);
  keep.select(0, 0).select(1, 5).fill_(0);   // one fully masked row
  keep.select(0, 1).select(2, 7).fill_(0);   // one masked key
  Tensor additive = cpu_rand({37, 45}, DType::f64, 9);
  additive.select(0, 3).fill_(-std::numeric_limits<double>::infinity());
  for (DType dt : {DType::f32, DType::bf16}) {
    const Tensor q = cpu_rand({2, 3, 37, 32}, dt, 1, -1, 1), k = cpu_rand({2, 3, 45, 32}, dt, 2, -1, 1),
                 v = cpu_rand({2, 3, 45, 32}, dt, 3, -1, 1);
    for (bool causal : {false, true}) {
      const Tensor keep_gpu = keep.to(gpu()), add_gpu = additive.to(dt).to(gpu());
      const Tensor add_cpu = additive.to(dt);
      auto with_keep = [&](const std::vector<Tensor>& t) {
        return scaled_dot_product_attention(t[0], t[1], t[2], t[0].device().is_cuda() ? keep_gpu : keep, causal);
      };
      expect_gpu_matches_cpu(with_keep, {q, k, v}, tol_for(dt), true,
                             str_cat("u8 mask ", dtype_name(dt), causal ? " causal" : ""));
      auto with_additive = [&](const std::vector<Tensor>& t) {
        return scaled_dot_product_attention(t[0], t[1], t[2], t[0].device().is_cuda() ? add_gpu : add_cpu, causal);
      };
      expect_gpu_matches_cpu(with_additive, {q, k, v}, tol_for(dt), true,
                             str_cat("additive mask ", dtype_name(dt), causal ? " causal" : ""));
    }
  }
  auto plain = [](const std::vector<Tensor>& t) { return scaled_dot_product_attention(t[0], t[1], t[2]); };
  auto causal = [](const std::vector<Tensor>& t) {
    return scaled_dot_product_attention(t[0], t[1], t[2], Tensor(), true);
  };
  for (auto* fn : {+plain, +causal}) {
    expect_gpu_matches_cpu(fn, {cpu_rand({2, 30, 16}, DType::f64, 1), cpu_rand({2, 40, 16}, DType::f64, 2),
                                cpu_rand({2, 40, 16}, DType::f64, 3)},
                           tol_for(DType::f64), true, "f64");
    expect_gpu_matches_cpu(fn, {cpu_rand({2, 30, 16}, DType::f16, 1), cpu_rand({2, 40, 16}, DType::f16, 2),
                                cpu_rand({2, 40, 16}, DType::f16, 3)},
                           tol_for(DType::f16), true, "f16");
    expect_gpu_matches_cpu(fn, {cpu_rand({2, 30, 16}, DType::f32, 1), cpu_rand({2, 40, 16}, DType::f32, 2),
                                cpu_rand({2, 40, 24}, DType::f32, 3)},
                           tol_for(DType::f32), true, "E 16, Ev 24");
    expect_gpu_matches_cpu(fn, {cpu_rand({2, 30, 160}, DType::f32, 1, -1, 1), cpu_rand({2, 40, 160}, DType::f32, 2, -1, 1),
                                cpu_rand({2, 40, 160}, DType::f32, 3, -1, 1)},
                           tol_for(DType::f32), true, "head dim 160");
  }
}

TEST(GpuAttention, MixedDevicesRaise) {
  SKIP_WITHOUT_CUDA();
  const Tensor q = Tensor::zeros({2, 5, 8}).to(gpu()), k = Tensor::zeros({2, 7, 8}), v = Tensor::zeros({2, 7, 8});
  const std::string msg = error_of([&] { scaled_dot_product_attention(q, k.to(gpu()), v); });
  EXPECT_NE(msg.find("scaled_dot_product_attention: devices differ"), std::string::npos) << msg;
  const std::string mask_msg = error_of([&] {
    scaled_dot_product_attention(q, k.to(gpu()), v.to(gpu()), Tensor::ones({5, 7}, DType::u8));
  });
  EXPECT_NE(mask_msg.find("devices differ"), std::string::npos) << mask_msg;
}

}  // namespace
}  // namespace shallow::testing
