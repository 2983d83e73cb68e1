// Every op with a CUDA kernel against the same op on the CPU, forward and backward: f32 and f64
// (bf16 where the op takes it), odd sizes, broadcasting, and non-contiguous inputs made by
// transposing or slicing inside the op under test.
#include <cmath>
#include <limits>

#include "engine/cuda/ops.h"
#include "kernels/cpu/optim.h"
#include "tests/gpu/gpu_test.h"

namespace shallow::testing {
namespace {

const DType kFloatTypes[] = {DType::f32, DType::f64};

// Whole numbers (from an f64 tensor): divided by 4 they give quarters, so that a and b are
// often equal and the comparisons and max/min ties are exercised.
Tensor floor_quarter(const Tensor& x) {
  std::vector<double> v = x.to_vector<double>();
  for (double& e : v) e = double(int64_t(e));
  return Tensor::from_vector<double>(v, x.shape());
}

// ---- unary

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> fn;
  double low, high;  // input range inside the op's domain
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, -2, 2},
      {"exp", [](const Tensor& x) { return exp(x); }, -2, 2},
      {"log", [](const Tensor& x) { return log(x); }, 0.1, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.1, 3},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, 0.1, 3},
      {"abs", [](const Tensor& x) { return abs(x); }, -2, 2},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3, 3},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -4, 4},
      {"relu", [](const Tensor& x) { return relu(x); }, -2, 2},
      {"gelu", [](const Tensor& x) { return gelu(x); }, -4, 4},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }, -4, 4},
      {"quick_gelu", [](const Tensor& x) { return quick_gelu(x); }, -4, 4},
      {"elu", [](const Tensor& x) { return elu(x, 0.7); }, -3, 3},
      {"softplus", [](const Tensor& x) { return softplus(x, 2.0, 3.0); }, -3, 3},
  };
}

TEST(GpuUnary, EveryOpForwardAndBackward) {
  SKIP_WITHOUT_CUDA();
  for (const UnaryCase& c : unary_cases()) {
    for (DType dt : kFloatTypes) {
      // 1031 elements: not a multiple of 4, so the vectorized path leaves a tail.
      Tensor x = cpu_rand({1031}, dt, 10, c.low, c.high);
      auto f = [&](const std::vector<Tensor>& v) { return c.fn(v[0]); };
      expect_gpu_matches_cpu(f, {x}, tol_for(dt), true, std::string(c.name) + " " + dtype_name(dt));
    }
  }
}

TEST(GpuUnary, NonContiguousOffsetAndHalfInputs) {
  SKIP_WITHOUT_CUDA();
  for (const UnaryCase& c : unary_cases()) {
    Tensor x = cpu_rand({9, 14}, DType::f32, 11, c.low, c.high);
    // A transposed view (made contiguous by the op).
    auto f = [&](const std::vector<Tensor>& v) { return c.fn(v[0].slice(1, 1, 14).t()); };
    expect_gpu_matches_cpu(f, {x}, tol_for(DType::f32), true, std::string(c.name) + " view");
    // A contiguous view one element in: its pointer is not 16-byte aligned (no float4 loads).
    auto fo = [&](const std::vector<Tensor>& v) { return c.fn(v[0].reshape({-1}).slice(0, 1, 126)); };
    expect_gpu_matches_cpu(fo, {x}, tol_for(DType::f32), true, std::string(c.name) + " offset");
    Tensor h = cpu_rand({33}, DType::bf16, 12, c.low, c.high);
    auto fh = [&](const std::vector<Tensor>& v) { return c.fn(v[0]); };
    expect_gpu_matches_cpu(fh, {h}, tol_for(DType::bf16), true, std::string(c.name) + " bf16");
  }
}

TEST(GpuUnary, LargeTensorUsesManyBlocks) {
  SKIP_WITHOUT_CUDA();
  // More elements than 65536 blocks of 256 threads cover in one sweep: the grid-stride loop.
  Tensor x = cpu_rand({(int64_t(1) << 24) + 3}, DType::f32, 13);
  auto f = [](const std::vector<Tensor>& v) { return gelu(v[0]); };
  expect_gpu_matches_cpu(f, {x}, tol_for(DType::f32), false, "gelu 2^24 + 3");
}

// ---- binary

struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> fn;
  bool differentiable;
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, true},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, true},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, true},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, true},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }, true},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }, true},
      // pow's gradient uses where(), which has no CUDA kernel yet: forward only.
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, false},
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }, false},
      {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }, false},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }, false},
      {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); }, false},
      {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }, false},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }, false},
  };
}

TEST(GpuBinary, EveryOpWithBroadcastingAndViews) {
  SKIP_WITHOUT_CUDA();
  struct Layout {
    const char* name;
    Shape a, b;
    std::function<Tensor(const Tensor&)> view_a, view_b;
  };
  auto same = [](const Tensor& t) { return t; };
  const std::vector<Layout> layouts = {
      {"same shape", {37, 29}, {37, 29}, same, same},
      {"row broadcast", {5, 7, 13}, {13}, same, same},
      {"both broadcast", {6, 1, 9}, {1, 4, 1}, same, same},
      {"scalar", {31}, {}, same, same},
      {"transposed", {11, 8}, {8, 11}, [](const Tensor& t) { return t.t(); }, same},
      {"sliced", {10, 12}, {10, 5},
       [](const Tensor& t) { return t.slice(1, 1, 11, 2); }, same},
  };
  for (const BinaryCase& c : binary_cases()) {
    for (const Layout& l : layouts) {
      for (DType dt : kFloatTypes) {
        // Positive bases keep pow real; ties between a and b appear for the comparisons
        // because both are rounded to quarters.
        Tensor a = div(floor_quarter(cpu_rand(l.a, DType::f64, 20, 1, 12)), 4.0).to(dt);
        Tensor b = div(floor_quarter(cpu_rand(l.b, DType::f64, 21, 1, 12)), 4.0).to(dt);
        auto f = [&](const std::vector<Tensor>& v) { return c.fn(l.view_a(v[0]), l.view_b(v[1])); };
        expect_gpu_matches_cpu(f, {a, b}, tol_for(dt), c.differentiable,
                               std::string(c.name) + " " + l.name + " " + dtype_name(dt));
      }
    }
  }
}

TEST(GpuBinary, ScalarOperandsAndBf16) {
  SKIP_WITHOUT_CUDA();
  Tensor x = cpu_rand({3, 17}, DType::f32, 22);
  auto f = [](const std::vector<Tensor>& v) { return div(add(mul(v[0], 3.0), 1.5), 2.0); };
  expect_gpu_matches_cpu(f, {x}, tol_for(DType::f32), true, "tensor-scalar chain");
  Tensor a = cpu_rand({4, 9}, DType::bf16, 23), b = cpu_rand({9}, DType::bf16, 24);
  auto g = [](const std::vector<Tensor>& v) { return mul(v[0], v[1]); };
  expect_gpu_matches_cpu(g, {a, b}, tol_for(DType::bf16), true, "bf16 mul");
}

// ---- reductions

TEST(GpuReduce, SumMeanMaxMinOverDims) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    const char* name;
    std::vector<int64_t> dims;
    bool keepdim;
  };
  const std::vector<Case> cases = {{"last", {-1}, false},   {"first", {0}, true},
                                   {"middle", {1}, false},  {"all", {}, false},
                                   {"two", {0, 2}, true},   {"outer pair", {0, 1}, false}};
  for (DType dt : kFloatTypes) {
    Tensor x = cpu_rand({7, 300, 5}, dt, 30);
    for (const Case& c : cases) {
      std::string tag = std::string(c.name) + " " + dtype_name(dt);
      auto fs = [&](const std::vector<Tensor>& v) { return sum(v[0], c.dims, c.keepdim); };
      auto fm = [&](const std::vector<Tensor>& v) { return mean(v[0], c.dims, c.keepdim); };
      auto fx = [&](const std::vector<Tensor>& v) { return max(v[0], c.dims, c.keepdim); };
      auto fn = [&](const std::vector<Tensor>& v) { return min(v[0], c.dims, c.keepdim); };
      // Sums of 10^4 values in another order: a looser absolute tolerance in f32.
      Tol t = tol_for(dt);
      if (dt == DType::f32) t = {1e-4, 1e-4};
      expect_gpu_matches_cpu(fs, {x}, t, true, "sum " + tag);
      expect_gpu_matches_cpu(fm, {x}, t, true, "mean " + tag);
      expect_gpu_matches_cpu(fx, {x}, t, true, "max " + tag);
      expect_gpu_matches_cpu(fn, {x}, t, true, "min " + tag);
    }
  }
}

// Sums over a dim with 16 or more values after it (the column kernel: groups of 8 columns
// from 128 rows, of 32 below): a bias gradient's shape, column counts off a multiple of 8 and
// 32, both sides of 128 rows, more outer indices than a grid's y (65535), a single row, f64.
TEST(GpuReduce, SumsOverWideColumns) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    std::vector<int64_t> shape;
    int64_t dim;
  };
  const std::vector<Case> cases = {{{1024, 1024}, 0}, {{300, 70}, 0},      {{3, 1000, 33}, 1},
                                   {{1, 16}, 0},      {{70000, 2, 16}, 1}, {{5, 37, 48}, 0},
                                   {{127, 41}, 0},    {{128, 41}, 0},      {{2, 128, 17}, 1}};
  for (DType dt : {DType::f32, DType::f64}) {
    uint64_t seed = 40;
    for (const Case& c : cases) {
      Tensor x = cpu_rand(c.shape, dt, ++seed);
      auto f = [&](const std::vector<Tensor>& v) { return sum(v[0], {c.dim}); };
      Tol t = tol_for(dt);
      if (dt == DType::f32) t = {1e-4, 1e-4};  // another order of up to 1024 values
      expect_gpu_matches_cpu(f, {x}, t, true, str_cat("sum over dim ", c.dim, " of ", shape_str(c.shape), " ", dtype_name(dt)));
    }
  }
}

TEST(GpuReduce, LongRowsTiesAndViews) {
  SKIP_WITHOUT_CUDA();
  // A row longer than a block (256 threads) and a row shorter than a warp.
  for (int64_t n : {1, 5, 31, 257, 4099}) {
    Tensor x = cpu_rand({3, n}, DType::f32, 31);
    auto f = [](const std::vector<Tensor>& v) { return max(v[0], {1}); };
    expect_gpu_matches_cpu(f, {x}, tol_for(DType::f32), true, "max n=" + std::to_string(n));
  }
  // Ties: the gradient is shared evenly, as on the CPU.
  Tensor ties = Tensor::from_vector<float>({1, 3, 3, 2, 5, 5, 5, 0}, {2, 4});
  auto f = [](const std::vector<Tensor>& v) { return max(v[0], {1}); };
  expect_gpu_matches_cpu(f, {ties}, tol_for(DType::f32), true, "ties");
  // A transposed input.
  Tensor x = cpu_rand({40, 23}, DType::f64, 32);
  auto ft = [](const std::vector<Tensor>& v) { return sum(v[0].t(), {1}); };
  expect_gpu_matches_cpu(ft, {x}, tol_for(DType::f64), true, "sum of a transpose");
  auto fv = [](const std::vector<Tensor>& v) { return var(v[0], {0}); };
  expect_gpu_matches_cpu(fv, {x}, tol_for(DType::f64), true, "var");
}

// Few long rows are split across blocks (rows of 2^15 values or more, fewer than 256 rows):
// both sides of each bound, a whole tensor into one value (the logit scale's gradient), a
// part shorter than the rest, max and min (argmax too), and the same bits on a second run.
TEST(GpuReduce, FewLongRowsSplitAcrossBlocks) {
  SKIP_WITHOUT_CUDA();
  const std::vector<Shape> shapes = {{1, 1000003}, {3, 32767},  {3, 32768},
                                     {255, 40000}, {256, 40000}, {1, 8192 * 1024 + 77}};
  for (DType dt : {DType::f32, DType::f64}) {
    uint64_t seed = 60;
    for (const Shape& shape : shapes) {
      const std::string tag = str_cat(shape_str(shape), " ", dtype_name(dt));
      const Tensor x = cpu_rand(shape, dt, ++seed), g = x.to(gpu());
      // The sums against the exact ones (in f64 on the CPU): the CPU's own f32 sum of 8.4
      // million values is off by about 0.1, the parts' partial sums by far less.
      const std::vector<double> exact = sum(x.to(DType::f64), {1}).to_vector<double>();
      const std::vector<double> got =
          sum(g, {1}).to(Device::cpu()).to(DType::f64).to_vector<double>();
      const double within = dt == DType::f32 ? 2e-3 : 1e-9;
      for (size_t r = 0; r < exact.size(); ++r)
        EXPECT_NEAR(got[r], exact[r], within) << "sum, row " << r << " of " << tag;
      auto fx = [](const std::vector<Tensor>& v) { return max(v[0], {1}); };
      auto fn = [](const std::vector<Tensor>& v) { return min(v[0], {1}); };
      expect_gpu_matches_cpu(fx, {x}, tol_for(dt), false, "max " + tag);
      expect_gpu_matches_cpu(fn, {x}, tol_for(dt), false, "min " + tag);
      EXPECT_EQ(argmax(g, 1).to_vector<int64_t>(), argmax(x, 1).to_vector<int64_t>()) << tag;
      const Tensor once = sum(g, {1}).to(Device::cpu()), again = sum(g, {1}).to(Device::cpu());
      EXPECT_EQ(once.to(DType::f64).to_vector<double>(), again.to(DType::f64).to_vector<double>())
          << "sum not reproducible " << tag;
    }
  }
  // Every value the same: ties everywhere, the first index wins across parts; a NaN late in
  // a long row wins over all numbers, in max and min.
  Tensor flat = Tensor::full({2, 100000}, 1.5f);
  Tensor gflat = flat.to(gpu());
  EXPECT_EQ(argmax(gflat, 1).to_vector<int64_t>(), (std::vector<int64_t>{0, 0}));
  std::vector<float> with_nan(100000, 0.f);
  with_nan[99990] = std::numeric_limits<float>::quiet_NaN();
  with_nan[5] = 7.f;
  Tensor gnan = Tensor::from_vector<float>(with_nan, {1, 100000}).to(gpu());
  EXPECT_EQ(argmax(gnan, 1).to_vector<int64_t>(), (std::vector<int64_t>{99990}));
  EXPECT_TRUE(std::isnan(min(gnan, {1}).to(Device::cpu()).to_vector<float>()[0]));
}

TEST(GpuReduce, ArgmaxFirstExtremeAndNaN) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dt));
    // Rows (dim 1, inner == 1) and columns (dim 0, inner > 1); quarters make ties common.
    Tensor x = div(floor_quarter(cpu_rand({37, 300}, DType::f64, 33, 0, 8)), 4.0).to(dt);
    for (int64_t dim : {0, 1}) {
      Tensor got = argmax(x.to(gpu()), dim);
      EXPECT_EQ(got.dtype(), DType::i64);
      EXPECT_EQ(got.to_vector<int64_t>(), argmax(x, dim).to_vector<int64_t>()) << "dim " << dim;
    }
  }
  // NaN counts as the largest value, the first one wins; ties go to the first index.
  const float nan = std::nanf("");
  Tensor y = Tensor::from_vector<float>({1, nan, 3, nan, 2, 5, 5, 0}, {2, 4});
  EXPECT_EQ(argmax(y.to(gpu()), 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(argmax(y.to(gpu()), 1).to_vector<int64_t>(), argmax(y, 1).to_vector<int64_t>());
  // A transposed input and keepdim.
  Tensor z = cpu_rand({20, 9}, DType::f32, 34);
  EXPECT_EQ(argmax(z.to(gpu()).t(), 1, true).shape(), (Shape{9, 1}));
  EXPECT_EQ(argmax(z.to(gpu()).t(), 1, true).to_vector<int64_t>(),
            argmax(z.t(), 1, true).to_vector<int64_t>());
}

// ---- softmax

TEST(GpuSoftmax, EveryDimBothForms) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    Tensor x = cpu_rand({6, 37, 5}, dt, 40, -6, 6);
    for (int64_t dim : {0, 1, 2, -1}) {
      auto fs = [&](const std::vector<Tensor>& v) { return softmax(v[0], dim); };
      auto fl = [&](const std::vector<Tensor>& v) { return log_softmax(v[0], dim); };
      const std::string tag = "dim " + std::to_string(dim) + " " + dtype_name(dt);
      expect_gpu_matches_cpu(fs, {x}, tol_for(dt), true, "softmax " + tag);
      expect_gpu_matches_cpu(fl, {x}, tol_for(dt), true, "log_softmax " + tag);
    }
  }
}

TEST(GpuSoftmax, LongRowsLargeValuesAndViews) {
  SKIP_WITHOUT_CUDA();
  // Values up to 80: exp would overflow f32 without the running max.
  Tensor x = cpu_rand({4, 5000}, DType::f32, 41, -80, 80);
  auto fs = [](const std::vector<Tensor>& v) { return softmax(v[0], -1); };
  expect_gpu_matches_cpu(fs, {x}, tol_for(DType::f32), true, "long rows");
  Tensor t = cpu_rand({9, 13}, DType::f32, 42);
  auto ft = [](const std::vector<Tensor>& v) { return log_softmax(v[0].t(), 1); };
  expect_gpu_matches_cpu(ft, {t}, tol_for(DType::f32), true, "transposed");
  Tensor h = cpu_rand({3, 50}, DType::bf16, 43);
  expect_gpu_matches_cpu(fs, {h}, tol_for(DType::bf16), true, "bf16");
}

// ---- layer norm

TEST(GpuLayerNorm, AffineAndPlainForwardBackward) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (int64_t n : {1, 7, 768, 1030}) {
      Tensor x = cpu_rand({5, 3, n}, dt, 50, -3, 5);
      Tensor w = cpu_rand({n}, dt, 51, 0.5, 1.5), b = cpu_rand({n}, dt, 52);
      const std::string tag = "n=" + std::to_string(n) + " " + dtype_name(dt);
      auto fa = [&](const std::vector<Tensor>& v) { return layer_norm(v[0], {n}, v[1], v[2], 1e-5); };
      auto fp = [&](const std::vector<Tensor>& v) { return layer_norm(v[0], {n}); };
      Tol t = tol_for(dt);
      if (dt == DType::f32) t = {1e-4, 1e-4};  // the weight gradient sums 15 rows of products
      expect_gpu_matches_cpu(fa, {x, w, b}, t, true, "affine " + tag);
      expect_gpu_matches_cpu(fp, {x}, t, true, "plain " + tag);
    }
  }
}

TEST(GpuLayerNorm, ManyRowsViewsAndBf16) {
  SKIP_WITHOUT_CUDA();
  // The weight-gradient kernel takes groups of 32 columns below 128 rows and of 8 from 128
  // (1024 / 8 row lanes): both sides of that bound, many more rows than lanes, a column count
  // off a multiple of 8.
  Tensor w = cpu_rand({24}, DType::f32, 54), b = cpu_rand({24}, DType::f32, 55);
  auto f = [](const std::vector<Tensor>& v) { return layer_norm(v[0], {24}, v[1], v[2]); };
  for (int64_t rows : {127, 128, 1000}) {
    Tensor x = cpu_rand({rows, 24}, DType::f32, 53);
    expect_gpu_matches_cpu(f, {x, w, b}, {2e-4, 2e-4}, true, std::to_string(rows) + " rows");
  }
  Tensor x21 = cpu_rand({300, 21}, DType::f32, 60);
  Tensor w21 = cpu_rand({21}, DType::f32, 61), b21 = cpu_rand({21}, DType::f32, 62);
  auto f21 = [](const std::vector<Tensor>& v) { return layer_norm(v[0], {21}, v[1], v[2]); };
  expect_gpu_matches_cpu(f21, {x21, w21, b21}, {2e-4, 2e-4}, true, "21 columns");
  Tensor t = cpu_rand({24, 9}, DType::f32, 56);
  auto ft = [](const std::vector<Tensor>& v) { return layer_norm(v[0].t(), {24}, v[1], v[2]); };
  expect_gpu_matches_cpu(ft, {t, w, b}, tol_for(DType::f32), true, "transposed");
  Tensor h = cpu_rand({4, 32}, DType::bf16, 57);
  Tensor hw = cpu_rand({32}, DType::bf16, 58), hb = cpu_rand({32}, DType::bf16, 59);
  auto fh = [](const std::vector<Tensor>& v) { return layer_norm(v[0], {32}, v[1], v[2]); };
  expect_gpu_matches_cpu(fh, {h, hw, hb}, tol_for(DType::bf16), true, "bf16");
}

// ---- matmul, both GEMM implementations

class GpuMatmul : public GemmBackendTest {};

TEST_P(GpuMatmul, OddSizesTransposesAndBatches) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    const char* name;
    Shape a, b;
    std::function<Tensor(const Tensor&, const Tensor&)> fn;
  };
  auto plain = [](const Tensor& a, const Tensor& b) { return matmul(a, b); };
  const std::vector<Case> cases = {
      {"square 64", {64, 64}, {64, 64}, plain},
      {"odd", {67, 131}, {131, 45}, plain},
      {"thin", {1, 200}, {200, 3}, plain},
      {"a transposed", {50, 33}, {50, 17},
       [](const Tensor& a, const Tensor& b) { return matmul(a.t(), b); }},
      {"b transposed", {33, 50}, {17, 50},
       [](const Tensor& a, const Tensor& b) { return matmul(a, b.t()); }},
      {"both transposed", {70, 19}, {23, 70},
       [](const Tensor& a, const Tensor& b) { return matmul(a.t(), b.t()); }},
      {"batched", {3, 2, 21, 18}, {3, 2, 18, 25}, plain},
      {"broadcast batch", {4, 21, 18}, {18, 25}, plain},
      {"sliced", {40, 60}, {30, 20},
       [](const Tensor& a, const Tensor& b) { return matmul(a.slice(1, 0, 60, 2), b); }},
      {"vector", {19}, {19, 7}, plain},
      {"linear", {5, 3, 12}, {8, 12},
       [](const Tensor& x, const Tensor& w) { return linear(x, w); }},
  };
  for (const Case& c : cases) {
    for (DType dt : kFloatTypes) {
      Tensor a = cpu_rand(c.a, dt, 60), b = cpu_rand(c.b, dt, 61);
      auto f = [&](const std::vector<Tensor>& v) { return c.fn(v[0], v[1]); };
      Tol t = tol_for(dt);
      if (dt == DType::f32) t = {1e-4, 1e-4};  // sums of up to 200 products in another order
      expect_gpu_matches_cpu(f, {a, b}, t, true, std::string(c.name) + " " + dtype_name(dt));
    }
  }
}

TEST_P(GpuMatmul, Bf16AccumulatesInF32) {
  SKIP_WITHOUT_CUDA();
  Tensor a = cpu_rand({37, 300}, DType::bf16, 62), b = cpu_rand({300, 29}, DType::bf16, 63);
  auto f = [](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); };
  // The CPU computes bf16 in f32 too; both round the f32 sum once, so they differ by at most
  // one bf16 step where the sums straddle a rounding boundary.
  expect_gpu_matches_cpu(f, {a, b}, {3e-2, 1e-2}, true, "bf16 37x300x29");
  // Against the exact product: 300 products of values below 4 in f32 stay within 1e-2 relative.
  Tensor exact = matmul(a.to(DType::f64), b.to(DType::f64));
  EXPECT_TRUE(all_close(matmul(a.to(gpu()), b.to(gpu())), exact, 0.1, 1e-2));
}

TEST_P(GpuMatmul, EmptyInnerDimensionGivesZeros) {
  SKIP_WITHOUT_CUDA();
  Tensor a = Tensor::empty({5, 0}, DType::f32, gpu()), b = Tensor::empty({0, 3}, DType::f32, gpu());
  EXPECT_TRUE(all_close(matmul(a, b), Tensor::zeros({5, 3}), 0, 0));
}

INSTANTIATE_TEST_SUITE_P(Backends, GpuMatmul,
                         ::testing::Values(CudaGemm::cublas, CudaGemm::tiled),
                         [](const ::testing::TestParamInfo<CudaGemm>& i) {
                           return std::string(cuda_gemm_name(i.param));
                         });

// ---- fused AdamW

TEST(GpuAdam, FusedStepMatchesTheCpuKernel) {
  SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (bool amsgrad : {false, true}) {
      for (bool decoupled : {true, false}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + (amsgrad ? " amsgrad" : "") +
                     (decoupled ? " adamw" : " adam"));
        const int64_t n = 4099;
        Tensor p = cpu_rand({n}, dt, 70), m = Tensor::zeros({n}, dt), v = Tensor::zeros({n}, dt);
        Tensor vmax = amsgrad ? Tensor::zeros({n}, dt) : Tensor();
        Tensor gp = p.to(gpu()), gm = m.to(gpu()), gv = v.to(gpu());
        Tensor gvmax = amsgrad ? vmax.to(gpu()) : Tensor();
        cpu::AdamHyper h;
        h.lr = 1e-2;
        h.weight_decay = 0.05;
        h.decoupled_weight_decay = decoupled;
        h.amsgrad = amsgrad;
        for (int64_t step = 1; step <= 5; ++step) {
          h.step = step;
          Tensor g = cpu_rand({n}, dt, 71 + uint64_t(step));
          Tensor gg = g.to(gpu());
          SH_DISPATCH_FLOAT(dt, "adam", [&] {
            cpu::adam_update<scalar_t>(n, p.data<scalar_t>(), g.data<scalar_t>(), m.data<scalar_t>(),
                                       v.data<scalar_t>(),
                                       amsgrad ? vmax.data<scalar_t>() : nullptr, h);
          });
          gpu::adam_update(gp, gg, gm, gv, gvmax, h, "adamw");
        }
        const Tol t = dt == DType::f32 ? Tol{1e-6, 1e-5} : tol_for(dt);
        EXPECT_TRUE(all_close(gp, p, t.atol, t.rtol)) << "param";
        EXPECT_TRUE(all_close(gm, m, t.atol, t.rtol)) << "exp_avg";
        EXPECT_TRUE(all_close(gv, v, t.atol, t.rtol)) << "exp_avg_sq";
        if (amsgrad) {
          EXPECT_TRUE(all_close(gvmax, vmax, t.atol, t.rtol)) << "max_exp_avg_sq";
        }
      }
    }
  }
}

TEST(GpuBinary, ZeroDimCpuTensorsCombineWithCudaTensorsOthersAreRefused) {
  SKIP_WITHOUT_CUDA();
  const Tensor x = cpu_rand({3, 4}, DType::f32, 31);
  const Tensor floor = Tensor::scalar(0.5);  // 0-dim, on the CPU
  expect_gpu_matches_cpu([&](const auto& in) { return maximum(in[0], floor); }, {x},
                         tol_for(DType::f32), true, "maximum with a CPU scalar");
  expect_gpu_matches_cpu([&](const auto& in) { return sub(floor, in[0]); }, {x},
                         tol_for(DType::f32), true, "CPU scalar first");
  const std::string msg = error_of([&] { add(x.to(gpu()), Tensor::ones({4})); });
  EXPECT_NE(msg.find("devices differ"), std::string::npos) << msg;
}

}  // namespace
}  // namespace shallow::testing
