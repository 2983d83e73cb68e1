// bf16 matmul and linear on the CPU against torch's own bf16 results
// (tests/reference/ops_matmul_bf16.py). Both sum in f32 and round once to bf16; the sums differ
// only in the order of f32 additions, so an element may land one bf16 step (2^-8 relative)
// away from torch's, and most land exactly on it.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops.h"
#include "engine/ops/linalg_bf16.h"
#include "kernels/cpu/gemm_bf16.h"
#include "tests/support/fixtures.h"

using namespace shallow;
using shallow::testing::all_close;
using shallow::testing::Fixture;

namespace {

const Fixture& fx() {
  static const Fixture f("ops_matmul_bf16");
  return f;
}
Tensor F(const std::string& key) { return fx().get(key); }

// One bf16 step of the expected value, relative; the absolute part covers results near zero
// whose f32 sums cancel.
constexpr double kRtol = 1.0 / 128, kAtol = 1e-3;

// The share of elements equal to torch's bit for bit.
double exact_share(const Tensor& got, const Tensor& want) {
  const auto g = got.to_vector<bf16>(), w = want.to_vector<bf16>();
  size_t same = 0;
  for (size_t i = 0; i < g.size(); ++i) same += g[i].bits == w[i].bits;
  return g.empty() ? 1.0 : double(same) / double(g.size());
}

void expect_matches_torch(const Tensor& got, const Tensor& want, const std::string& name) {
  EXPECT_EQ(got.dtype(), DType::bf16) << name;
  EXPECT_EQ(got.shape(), want.shape()) << name;
  EXPECT_TRUE(all_close(got.to(DType::f32), want.to(DType::f32), kAtol, kRtol)) << name;
  EXPECT_GT(exact_share(got, want), 0.9) << name;
}

}  // namespace

TEST(MatmulBf16, MatchesTorchBf16) {
  NoGrad no_grad;
  for (const char* c : {"mat_mat", "batch_mat", "bcast", "vec_mat", "deep"}) {
    const std::string k = c;
    expect_matches_torch(matmul(F(k + ".a"), F(k + ".b")), F(k + ".out"), k);
  }
  // Transposed views, read in place.
  expect_matches_torch(matmul(F("trans.at").t(), F("trans.bt").t()), F("trans.out"), "trans");
}

TEST(MatmulBf16, LinearMatchesTorchBf16WithAndWithoutBias) {
  NoGrad no_grad;
  const Tensor x = F("linear.x"), w = F("linear.w"), b = F("linear.b");
  expect_matches_torch(linear(x, w, b), F("linear.out"), "linear");
  expect_matches_torch(linear(x, w), F("linear.out_nobias"), "linear without bias");
  // A non-contiguous input: x inside a wider buffer.
  Tensor wide = Tensor::zeros({2, 13, 100}, DType::bf16);
  wide.slice(2, 10, 80).copy_(x);
  const Tensor view = wide.slice(2, 10, 80);
  ASSERT_FALSE(view.is_contiguous());
  expect_matches_torch(linear(view, w, b), F("linear.out"), "strided input");
}

// linear_act in bf16 applies the activation in the GEMM's store: within one bf16 rounding of
// the ops one after the other (which round the linear's output first), every activation.
TEST(MatmulBf16, LinearActFusesTheActivation) {
  NoGrad no_grad;
  const Tensor x = F("linear.x"), w = F("linear.w"), b = F("linear.b");
  for (LinearAct act : {LinearAct::none, LinearAct::relu, LinearAct::gelu, LinearAct::gelu_tanh,
                        LinearAct::quick_gelu}) {
    const Tensor fused = linear_act(x, w, b, act);
    ASSERT_EQ(fused.dtype(), DType::bf16);
    const Tensor y = linear(x, w, b).to(DType::f32);
    Tensor separate;
    switch (act) {
      case LinearAct::none: separate = y; break;
      case LinearAct::relu: separate = relu(y); break;
      case LinearAct::gelu: separate = gelu(y); break;
      case LinearAct::gelu_tanh: separate = gelu(y, "tanh"); break;
      case LinearAct::quick_gelu: separate = quick_gelu(y); break;
    }
    // Two bf16 roundings apart at most: 2^-7 relative, plus a little for values near zero.
    EXPECT_TRUE(all_close(fused.to(DType::f32), separate, 1e-3, 1.0 / 128)) << int(act);
  }
  // The wrong shapes still raise linear's error.
  EXPECT_THROW(linear_act(x, w.slice(1, 0, 5), b, LinearAct::gelu), Error);
}

TEST(MatmulBf16, BothKernelPathsGiveTorchsValues) {
  NoGrad no_grad;
  for (auto path : {cpu::GemmBf16Path::avx512_bf16, cpu::GemmBf16Path::scalar}) {
    if (path == cpu::GemmBf16Path::avx512_bf16 && !cpu::gemm_bf16_avx512_available()) continue;
    cpu::set_gemm_bf16_path(path);
    expect_matches_torch(linear(F("linear.x"), F("linear.w"), F("linear.b")), F("linear.out"),
                         cpu::gemm_bf16_path_name(path));
  }
  cpu::set_gemm_bf16_path(cpu::GemmBf16Path::automatic);
}

TEST(MatmulBf16, TakenOnlyForInference) {
  const Tensor a = F("mat_mat.a"), b = F("mat_mat.b");
  {
    NoGrad no_grad;
    EXPECT_TRUE(bf16_gemm_applies({&a, &b}));
  }
  Tensor leaf = a.clone().detach();
  leaf.set_requires_grad(true);
  EXPECT_FALSE(bf16_gemm_applies({&leaf, &b}));     // with grad: the f32 path, which records
  EXPECT_TRUE(bf16_gemm_applies({&a, &b}));         // no input needs grad: nothing to record
  const Tensor a32 = a.to(DType::f32), none;
  EXPECT_FALSE(bf16_gemm_applies({&a32, &b}));
  EXPECT_TRUE(bf16_gemm_applies({&a, &b, &none}));  // an undefined bias is no obstacle

  // Gradients still flow through bf16 matmul (on the f32 path) and come back as bf16.
  Tensor y = matmul(leaf, b);
  EXPECT_EQ(y.dtype(), DType::bf16);
  sum(y.to(DType::f32)).backward();
  ASSERT_TRUE(leaf.grad().defined());
  EXPECT_EQ(leaf.grad().dtype(), DType::bf16);
  EXPECT_TRUE(all_close(leaf.grad().to(DType::f32),
                        sum(b.to(DType::f32), {1}).unsqueeze(0).expand({37, 70}), 0.05, 1.0 / 64));
}

TEST(MatmulBf16, BadShapesStillNameTheOp) {
  NoGrad no_grad;
  const Tensor a = Tensor::zeros({3, 4}, DType::bf16), b = Tensor::zeros({5, 2}, DType::bf16);
  try {
    matmul(a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("matmul"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3, 4]"), std::string::npos) << e.what();
  }
  const Tensor w = Tensor::zeros({6, 4}, DType::bf16), bad_bias = Tensor::zeros({5}, DType::bf16);
  try {
    linear(a, w, bad_bias);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("linear: bias [5]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(matmul(a, Tensor::zeros({4, 2})), Error);  // bf16 with f32
}
