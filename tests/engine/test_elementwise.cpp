// Elementwise ops against PyTorch (tests/reference/ops_elementwise.py): binary ops with
// broadcasting, comparisons, every unary op; gradients by finite differences in f64; and a
// check that the gradient check itself catches a wrong backward.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "engine/ops.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradcheck.h"
#include "tests/support/errors.h"

using namespace shallow;
using shallow::testing::error_of;
using shallow::testing::all_close;
using shallow::testing::Fixture;
using shallow::testing::gradcheck;
using shallow::testing::rand_input;

namespace {

const Fixture& fx() {
  static const Fixture f("ops_elementwise");
  return f;
}
Tensor F(const std::string& key) { return fx().get(key); }

Tensor leaf(const Tensor& t) {
  Tensor l = t.clone().detach();
  l.set_requires_grad(true);
  return l;
}

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
struct NamedBinary {
  const char* name;
  BinaryFn fn;
  double rtol;  // 0: IEEE gives one answer, PyTorch's must be equal
};
const NamedBinary kBinary[] = {
    {"add", add, 0}, {"sub", sub, 0}, {"mul", mul, 0}, {"div", div, 1e-7},
    {"maximum", maximum, 0}, {"minimum", minimum, 0},
};
const char* kCases[] = {"same", "row", "col", "both", "scalar", "tview"};

using Args = std::vector<Tensor>;

}  // namespace

// ---------------------------------------------------------------- binary ops, forward

TEST(Elementwise, BinaryOpsMatchTorchWithBroadcasting) {
  for (const char* c : kCases) {
    const std::string cs = c;
    Tensor a = F(cs + ".a"), b = F(cs + ".b");
    if (cs == "tview") a = a.t();  // a non-contiguous operand
    if (cs == "scalar") {
      ASSERT_EQ(b.dim(), 0);
    }
    for (const auto& op : kBinary) {
      EXPECT_TRUE(all_close(op.fn(a, b), F(cs + "." + op.name), 0, op.rtol)) << cs << " " << op.name;
      // The f64 kernel agrees with PyTorch's f32 result to f32 precision.
      EXPECT_TRUE(all_close(op.fn(a.to(DType::f64), b.to(DType::f64)), F(cs + "." + op.name), 1e-6, 1e-6))
          << cs << " " << op.name << " f64";
    }
    Tensor base = add(abs(a), 0.5);
    EXPECT_TRUE(all_close(pow(base, b), F(cs + ".pow"), 1e-6, 1e-6)) << cs << " pow";
    // b broadcast against a, the other way round.
    EXPECT_TRUE(all_close(sub(b, a), neg(F(cs + ".sub")), 0, 0)) << cs;
  }
}

// bf16/f16 operands: computed in f32 and rounded once, bit for bit as the f32 op on the widened
// operands rounded back; for inference the CPU kernel reads the half values itself, and where a
// gradient is recorded the op goes through f32. Both must give the same bits.
TEST(Elementwise, HalfOperandsComputeInF32AndRoundOnce) {
  for (const char* c : kCases) {
    const std::string cs = c;
    Tensor a = F(cs + ".a"), b = F(cs + ".b");
    if (cs == "tview") a = a.t();
    for (DType dt : {DType::bf16, DType::f16})
      for (const auto& op : kBinary) {
        const Tensor ah = a.to(dt), bh = b.to(dt);
        const Tensor want = op.fn(ah.to(DType::f32), bh.to(DType::f32)).to(dt);
        const Tensor got = op.fn(ah, bh);
        EXPECT_EQ(got.dtype(), dt);
        EXPECT_TRUE(all_close(got, want, 0, 0)) << cs << " " << op.name << " " << dtype_name(dt);
        const Tensor recorded = op.fn(leaf(ah), bh);
        EXPECT_TRUE(recorded.requires_grad());
        EXPECT_TRUE(all_close(recorded.detach(), want, 0, 0)) << cs << " " << op.name << " recorded";
      }
  }
}

TEST(Elementwise, ScalarFormsMatchTorch) {
  Tensor x = F("scal.x"), p = F("scal.p");
  EXPECT_TRUE(all_close(x + 2.5, F("scal.add"), 0, 0));
  EXPECT_TRUE(all_close(x - 2.5, F("scal.sub"), 0, 0));
  EXPECT_TRUE(all_close(2.5 - x, F("scal.rsub"), 0, 0));
  EXPECT_TRUE(all_close(x * -1.5, F("scal.mul"), 0, 0));
  EXPECT_TRUE(all_close(-1.5 * x, F("scal.mul"), 0, 0));
  EXPECT_TRUE(all_close(x / 4.0, F("scal.div"), 0, 0));
  // PyTorch computes 2.5 / p as reciprocal(p) * 2.5: two roundings.
  EXPECT_TRUE(all_close(2.5 / p, F("scal.rdiv"), 0, 2.5e-7));
  for (double e : {3.0, 0.5, -1.5, 2.0}) {
    char key[32];
    std::snprintf(key, sizeof key, "scal.pow%.1f", e);
    EXPECT_TRUE(all_close(pow(p, e), F(key), 0, 1e-6)) << key;  // PyTorch special-cases some exponents
  }
}

TEST(Elementwise, ComparisonsMatchTorchAndAreNotRecorded) {
  Tensor a = leaf(F("cmp.a")), b = F("cmp.b");
  const std::pair<const char*, BinaryFn> cmps[] = {{"eq", eq}, {"ne", ne}, {"lt", lt},
                                                   {"le", le}, {"gt", gt}, {"ge", ge}};
  for (const auto& [name, fn] : cmps) {
    Tensor got = fn(a, b);
    EXPECT_EQ(got.dtype(), DType::f32);
    EXPECT_FALSE(got.requires_grad()) << name;
    EXPECT_TRUE(all_close(got, F(std::string("cmp.") + name), 0, 0)) << name;
    EXPECT_TRUE(all_close(fn(a.to(DType::bf16), b.to(DType::bf16)), F(std::string("cmp.") + name), 0, 0))
        << name << " bf16";
  }
}

TEST(Elementwise, MaximumMinimumTiesAndNaN) {
  for (const char* op : {"maximum", "minimum"}) {
    const std::string o = op;
    Tensor a = leaf(F("cmp.a")), b = leaf(F("cmp.b").expand({4, 6}).contiguous());
    Tensor out = o == "maximum" ? maximum(a, b) : minimum(a, b);
    EXPECT_TRUE(all_close(out, F("cmp." + o), 0, 0));
    sum(mul(out, F("cmp.w"))).backward();
    // On ties PyTorch gives each side half the gradient.
    EXPECT_TRUE(all_close(a.grad(), F("cmp." + o + "_grad_a"), 1e-6, 0)) << o;
    EXPECT_TRUE(all_close(b.grad(), F("cmp." + o + "_grad_b"), 1e-6, 0)) << o;
  }
  // NaN on either side wins, as in PyTorch.
  EXPECT_TRUE(all_close(maximum(F("nan.a"), F("nan.b")), F("nan.maximum"), 0, 0));
  EXPECT_TRUE(all_close(minimum(F("nan.a"), F("nan.b")), F("nan.minimum"), 0, 0));
}

TEST(Elementwise, PowGradientAtZeroBaseMatchesTorch) {
  Tensor base = leaf(F("pow0.base")), expo = leaf(F("pow0.expo"));
  Tensor out = pow(base, expo);
  EXPECT_TRUE(all_close(out, F("pow0.out"), 0, 0));
  sum(mul(out, F("pow0.w"))).backward();
  EXPECT_TRUE(all_close(base.grad(), F("pow0.grad_base"), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(expo.grad(), F("pow0.grad_expo"), 1e-6, 1e-6));
  Tensor base2 = leaf(F("pow0.base2"));
  sum(mul(pow(base2, 0.0), F("pow0.w").slice(0, 0, 4))).backward();
  EXPECT_TRUE(all_close(base2.grad(), F("pow0.grad_base2_e0"), 0, 0));
}

// ---------------------------------------------------------------- unary ops, forward

namespace {
struct NamedUnary {
  const char* name;
  std::function<Tensor(const Tensor&)> fn;
  bool positive_domain = false;
};
std::vector<NamedUnary> unary_ops() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }},
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"abs", [](const Tensor& x) { return abs(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"quick_gelu", [](const Tensor& x) { return quick_gelu(x); }},
      {"elu", [](const Tensor& x) { return elu(x); }},
      {"elu_a05", [](const Tensor& x) { return elu(x, 0.5); }},
      {"softplus", [](const Tensor& x) { return softplus(x); }},
      {"softplus_b2_t5", [](const Tensor& x) { return softplus(x, 2.0, 5.0); }},
      {"log", [](const Tensor& x) { return log(x); }, true},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, true},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, true},
  };
}
}  // namespace

TEST(Elementwise, UnaryOpsMatchTorchInF32AndF64) {
  for (const auto& op : unary_ops()) {
    for (const char* tag : {"f32", "f64"}) {
      const std::string t = tag;
      Tensor x = F(std::string(op.positive_domain ? "unary.xp_" : "unary.x_") + t);
      Tensor got = op.fn(x);
      EXPECT_EQ(got.dtype(), x.dtype());
      const double tol = t == "f32" ? 2e-6 : 1e-13;
      EXPECT_TRUE(all_close(got, F("unary." + std::string(op.name) + "_" + t), tol, tol))
          << op.name << " " << t;
      // A non-contiguous input (every other element) gives the same values.
      Tensor strided = x.slice(0, 1, x.size(0), 2);
      EXPECT_TRUE(all_close(op.fn(strided), got.slice(0, 1, x.size(0), 2), 0, 0)) << op.name;
    }
  }
}

TEST(Elementwise, UnaryOpsInBf16RoundOnceFromF32) {
  Tensor x = F("unary.x_f32").to(DType::bf16);
  for (const char* name : {"gelu", "tanh", "softplus", "quick_gelu"}) {
    for (const auto& op : unary_ops()) {
      if (std::string(op.name) != name) continue;
      Tensor got = op.fn(x);
      EXPECT_EQ(got.dtype(), DType::bf16);
      // Computed in f32 and rounded once...
      EXPECT_TRUE(all_close(got, op.fn(x.to(DType::f32)).to(DType::bf16), 0, 0)) << name;
      // ...which is within one bf16 step of the exact value (f64, itself checked against
      // PyTorch above) where f32 has the digits (the f32 tail of gelu loses them to
      // cancellation, in PyTorch as here).
      EXPECT_TRUE(all_close(got, op.fn(x.to(DType::f64)), 2e-6, 1.0 / 256)) << name;
    }
  }
  // PyTorch's own bf16 results agree where it rounds once too (quick_gelu is not a PyTorch op:
  // its reference is three bf16 steps).
  for (const char* name : {"gelu", "tanh", "softplus"}) {
    for (const auto& op : unary_ops()) {
      if (std::string(op.name) != name) continue;
      EXPECT_TRUE(all_close(op.fn(x), F(std::string("unary.") + name + "_bf16"), 2e-6, 1.0 / 256)) << name;
    }
  }
}

TEST(Elementwise, UnaryOpsPassInfinitiesAndNaNAsTorch) {
  Tensor x = F("unary.inf");
  for (const auto& op : unary_ops()) {
    const std::string key = "unary." + std::string(op.name) + "_inf";
    if (!fx().has(key)) continue;
    EXPECT_TRUE(all_close(op.fn(x), F(key), 0, 0)) << op.name;
  }
}

// ---------------------------------------------------------------- gradients

TEST(Elementwise, BinaryGradientsWithBroadcasting) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{2, 1, 3}, {4, 1}}, {{2, 3}, {}}, {{}, {2, 3}}};
  int seed = 100;
  for (const auto& [sa, sb] : shapes) {
    Tensor a = rand_input(sa, seed++), b = rand_input(sb, seed++, 0.5, 1.5);
    for (const auto& op : kBinary) {
      auto f = [fn = op.fn](const Args& v) { return fn(v[0], v[1]); };
      EXPECT_TRUE(gradcheck(f, {a, b})) << op.name << " " << shape_str(sa) << " " << shape_str(sb);
    }
    Tensor base = rand_input(sa, seed++, 0.5, 2.0);
    EXPECT_TRUE(gradcheck([](const Args& v) { return pow(v[0], v[1]); }, {base, b})) << "pow";
  }
  // Non-contiguous operands: a transposed, b a strided slice.
  Tensor a = rand_input({3, 2}, 120), b = rand_input({2, 6}, 121, 0.5, 1.5);
  for (const auto& op : kBinary) {
    auto f = [fn = op.fn](const Args& v) { return fn(v[0].t(), v[1].slice(1, 0, 6, 2)); };
    EXPECT_TRUE(gradcheck(f, {a, b})) << op.name << " non-contiguous";
  }
  // One operand not requiring grad.
  Tensor c = rand_input({2, 3}, 122);
  Tensor fixed = Tensor::full({3}, 2.0, DType::f64);
  EXPECT_TRUE(gradcheck([&](const Args& v) { return mul(v[0], fixed); }, {c}));
}

TEST(Elementwise, ScalarFormGradients) {
  Tensor x = rand_input({2, 3}, 130, 0.5, 2.0);
  const std::vector<std::function<Tensor(const Tensor&)>> fns = {
      [](const Tensor& v) { return v + 2.5; }, [](const Tensor& v) { return v - 2.5; },
      [](const Tensor& v) { return 2.5 - v; }, [](const Tensor& v) { return v * -1.5; },
      [](const Tensor& v) { return v / 4.0; }, [](const Tensor& v) { return 2.5 / v; },
      [](const Tensor& v) { return pow(v, 3.0); }, [](const Tensor& v) { return pow(v, -1.5); },
      [](const Tensor& v) { return -v; }};
  for (size_t i = 0; i < fns.size(); ++i)
    EXPECT_TRUE(gradcheck([&](const Args& v) { return fns[i](v[0]); }, {x})) << i;
}

TEST(Elementwise, UnaryGradients) {
  for (const auto& op : unary_ops()) {
    // Away from the kinks of relu and abs at 0 (finite differences cannot judge those).
    Tensor x = op.positive_domain ? rand_input({3, 4}, 140, 0.2, 3.0) : rand_input({3, 4}, 141, -3.0, 3.0);
    EXPECT_TRUE(gradcheck([&](const Args& v) { return op.fn(v[0]); }, {x})) << op.name;
    EXPECT_TRUE(gradcheck([&](const Args& v) { return op.fn(v[0].t()); }, {x})) << op.name << " transposed";
  }
  // softplus on both sides of its threshold, far enough from it that it is smooth there.
  Tensor s = Tensor::from_vector<double>({-3.0, -1.0, 0.5, 2.0, 3.0, 4.0}, {6});
  s.set_requires_grad(true);
  EXPECT_TRUE(gradcheck([](const Args& v) { return softplus(v[0], 2.0, 5.0); }, {s}));
}

TEST(Elementwise, UnaryGradientsAtKinksMatchTorch) {
  // relu'(0) = 0, abs'(0) = 0, elu'(0) = alpha, as PyTorch defines them.
  Tensor x = Tensor::from_vector<double>({0.0, -1.0, 2.0}, {3});
  x.set_requires_grad(true);
  sum(relu(x)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0, 1}));
  x.zero_grad();
  sum(abs(x)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, -1, 1}));
  x.zero_grad();
  sum(elu(x, 0.5)).backward();
  EXPECT_EQ(x.grad().to_vector<double>()[0], 0.5);
}

// ---------------------------------------------------------------- errors

TEST(Elementwise, ErrorsNameTheOpAndShapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  EXPECT_ERROR_HAS(mul(a, b), "mul: shapes [2, 3] and [4] cannot be broadcast together");
  EXPECT_ERROR_HAS(maximum(a, Tensor::zeros({3, 3})), "maximum: shapes [2, 3] and [3, 3]");
  EXPECT_ERROR_HAS(add(a, a.to(DType::f64)), "add: dtypes differ, f32 [2, 3] vs f64 [2, 3]");
  EXPECT_ERROR_HAS(div(Tensor::zeros({2}, DType::i64), Tensor::zeros({2}, DType::i64)),
                   "div: expected a floating-point tensor, got i64 of shape [2]");
  EXPECT_ERROR_HAS(lt(a, b), "lt: shapes [2, 3] and [4]");
  EXPECT_ERROR_HAS(exp(Tensor::zeros({2}, DType::i32)), "exp: expected a floating-point tensor, got i32");
  EXPECT_ERROR_HAS(gelu(a, "fast"), "gelu: approximate must be 'none' or 'tanh', got 'fast'");
  EXPECT_ERROR_HAS(softplus(a, 0.0), "softplus: beta must be positive");
}

// ---------------------------------------------------------------- the gradient check itself

namespace {
// x * x with a deliberately wrong backward (x instead of 2x), recorded by hand.
Tensor square_with_wrong_backward(const Tensor& x) {
  Tensor y;
  {
    NoGrad ng;
    y = mul(x, x);
  }
  record(y, "wrong_square", {&x}, [x](const Tensor& g) -> std::vector<Tensor> {
    return {mul(g, x.detach())};
  });
  return y;
}
}  // namespace

TEST(Gradcheck, FailsForAWrongBackward) {
  Tensor x = rand_input({2, 3}, 150, 0.5, 1.5);
  ::testing::AssertionResult r = gradcheck([](const Args& v) { return square_with_wrong_backward(v[0]); }, {x});
  EXPECT_FALSE(r);
  EXPECT_NE(std::string(r.message()).find("backward gives"), std::string::npos) << r.message();
  // The same op with the right backward passes, so it is the lambda that failed above.
  EXPECT_TRUE(gradcheck([](const Args& v) { return mul(v[0], v[0]); }, {x}));
}

TEST(Gradcheck, FailsWhenAGradientIsMissing) {
  // A backward that returns no gradient for an input that needs one is caught too.
  Tensor x = rand_input({3}, 151);
  auto no_gradient = [](const Args& v) {
    Tensor y;
    {
      NoGrad ng;
      y = mul(v[0], 2.0);
    }
    record(y, "no_grad_double", {&v[0]}, [](const Tensor&) -> std::vector<Tensor> { return {Tensor()}; });
    return y;
  };
  EXPECT_FALSE(gradcheck(no_gradient, {x}));
}
