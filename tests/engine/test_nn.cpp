// Modules: registration and dotted names, state dicts and their strict checks, train/eval,
// initialization, and each layer against torch.nn on fixtures (tests/reference/nn.py).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "engine/nn.h"
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

// A small nested model: "embed" (Linear), "blocks" (a Sequential of two Linear + activation),
// a buffer "scale", and a parameter of its own, "gain".
class Toy : public nn::Module {
 public:
  Toy() : Module("Toy") {
    embed = register_module("embed", std::make_shared<nn::Linear>(3, 4));
    blocks = register_module("blocks", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Linear>(4, 4), std::make_shared<nn::GELU>(),
        std::make_shared<nn::Linear>(4, 2, false)}));
    gain = register_parameter("gain", Tensor::ones({2}));
    scale = register_buffer("scale", Tensor::full({1}, 2.0));
  }
  Tensor forward(const Tensor& x) override { return blocks->forward(embed->forward(x)) * gain * scale; }

  std::shared_ptr<nn::Linear> embed;
  std::shared_ptr<nn::Sequential> blocks;
  Tensor gain, scale;
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

// ---- the Module base

TEST(NnModule, NamesNestWithDots) {
  Toy m;
  std::vector<std::string> names;
  for (auto& [n, _] : m.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"gain", "embed.weight", "embed.bias", "blocks.0.weight",
                                             "blocks.0.bias", "blocks.2.weight"}));
  ASSERT_EQ(m.named_buffers().size(), 1u);
  EXPECT_EQ(m.named_buffers()[0].first, "scale");
  EXPECT_EQ(m.num_parameters(), 2 + 12 + 4 + 16 + 4 + 8);
  EXPECT_EQ(m.parameters().size(), 6u);
  for (const Tensor& p : m.parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_FALSE(m.scale.requires_grad());

  std::vector<std::string> modules;
  for (auto& [n, mod] : m.named_modules()) modules.push_back(n + ":" + mod->type_name());
  EXPECT_EQ(modules, (std::vector<std::string>{"embed:Linear", "blocks:Sequential", "blocks.0:Linear",
                                               "blocks.1:GELU", "blocks.2:Linear"}));
  // Lookups by dotted name return the module's own tensors.
  EXPECT_EQ(m.parameter("blocks.2.weight").impl_ptr(), m.blocks->child("2")->parameter("weight").impl_ptr());
  EXPECT_EQ(m.buffer("scale").impl_ptr(), m.scale.impl_ptr());
  EXPECT_THROW(m.parameter("blocks.7.weight"), Error);
  EXPECT_THROW(m.parameter("embed.nope"), Error);
}

TEST(NnModule, RegistrationErrors) {
  Toy m;
  EXPECT_TRUE(contains(error_of([&] { m.register_parameter("gain", Tensor::zeros({1})); }), "already registered"));
  EXPECT_THROW(m.register_buffer("embed", Tensor::zeros({1})), Error);
  EXPECT_THROW(m.register_parameter("a.b", Tensor::zeros({1})), Error);
  EXPECT_THROW(m.register_module("x", nn::ModulePtr()), Error);
  EXPECT_THROW(m.register_parameter("ints", Tensor::zeros({1}, DType::i64)), Error);
  EXPECT_TRUE(contains(error_of([&] { m.forward(Tensor::zeros({2, 5})); }), "Linear(3, 4)"));
}

TEST(NnModule, StateDictRoundTrip) {
  manual_seed(1);
  Toy a;
  manual_seed(2);
  Toy b;
  Tensor x = randn({5, 3});
  ASSERT_FALSE(all_close(a.forward(x), b.forward(x)));
  nn::StateDict s = a.state_dict();
  EXPECT_EQ(s.size(), 7u);  // six parameters and one buffer
  EXPECT_FALSE(s.at("embed.weight").requires_grad());
  // The state dict shares storage with the module, as PyTorch's.
  EXPECT_EQ(s.at("gain").storage(), a.gain.storage());

  a.scale.fill_(3.0);
  nn::LoadResult r = b.load_state_dict(a.state_dict());
  EXPECT_TRUE(r.missing.empty() && r.unexpected.empty());
  EXPECT_TRUE(all_close(b.forward(x), a.forward(x), 0, 0));
  EXPECT_EQ(b.scale.to_vector<float>(), (std::vector<float>{3.0f}));
  // Loading copies into the module's tensors: the handles stay the same.
  EXPECT_TRUE(b.embed->weight.requires_grad());
  EXPECT_EQ(b.parameter("embed.weight").impl_ptr(), b.embed->weight.impl_ptr());
}

TEST(NnModule, StrictLoadListsEveryProblem) {
  Toy m;
  nn::StateDict s = m.state_dict();
  for (auto& [n, t] : s) t = t.clone();
  s.erase("blocks.0.bias");
  s.erase("scale");
  s["blocks.5.weight"] = Tensor::zeros({2});
  s["embed.weight"] = Tensor::zeros({4, 5});
  const Tensor before = m.gain.clone();
  s["gain"] = Tensor::full({2}, 7.0);

  const std::string msg = error_of([&] { m.load_state_dict(s); });
  EXPECT_TRUE(contains(msg, "load_state_dict into Toy")) << msg;
  EXPECT_TRUE(contains(msg, "missing (2):\n    blocks.0.bias\n    scale")) << msg;
  EXPECT_TRUE(contains(msg, "unexpected (1):\n    blocks.5.weight")) << msg;
  EXPECT_TRUE(contains(msg, "shape mismatch (1):\n    embed.weight: expected [4, 3], got [4, 5]")) << msg;
  EXPECT_TRUE(all_close(m.gain, before, 0, 0)) << "a failed load must change nothing";

  // Non-strict: names may differ, shapes may not.
  EXPECT_TRUE(contains(error_of([&] { m.load_state_dict(s, false); }), "shape mismatch"));
  s.erase("embed.weight");
  nn::LoadResult r = m.load_state_dict(s, false);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"blocks.0.bias", "embed.weight", "scale"}));
  EXPECT_EQ(r.unexpected, (std::vector<std::string>{"blocks.5.weight"}));
  EXPECT_EQ(m.gain.to_vector<float>(), (std::vector<float>{7, 7}));
}

TEST(NnModule, ZeroGradAndTrainEvalRecurse) {
  Toy m;
  sum(m.forward(Tensor::ones({2, 3}))).backward();
  for (const Tensor& p : m.parameters()) EXPECT_TRUE(p.grad().defined());
  m.zero_grad();
  for (const Tensor& p : m.parameters()) EXPECT_FALSE(p.grad().defined());

  EXPECT_TRUE(m.is_training());
  m.eval();
  for (auto& [n, mod] : m.named_modules()) EXPECT_FALSE(mod->is_training()) << n;
  m.train();
  for (auto& [n, mod] : m.named_modules()) EXPECT_TRUE(mod->is_training()) << n;
  // A module added to an evaluating parent takes its mode.
  m.eval();
  auto late = m.register_module("late", std::make_shared<nn::Identity>());
  EXPECT_FALSE(late->is_training());
}

// ---- Linear and the activations

TEST(NnLinear, DefaultInitIsPyTorchs) {
  manual_seed(7);
  nn::Linear fc(50, 400);
  const double bound = 1.0 / std::sqrt(50.0);
  std::vector<float> w = fc.weight.to_vector<float>(), b = fc.bias.to_vector<float>();
  double sum_sq = 0, lo = 1, hi = -1;
  for (float v : w) { sum_sq += double(v) * v; lo = std::min(lo, double(v)); hi = std::max(hi, double(v)); }
  EXPECT_LE(hi, bound);
  EXPECT_GE(lo, -bound);
  EXPECT_GT(hi, 0.98 * bound);  // U(-b, b): the extremes get close to the bound
  EXPECT_NEAR(std::sqrt(sum_sq / double(w.size())), bound / std::sqrt(3.0), 0.02 * bound);
  for (float v : b) EXPECT_LE(std::fabs(v), bound);
  // The same seed gives the same weights.
  manual_seed(7);
  nn::Linear again(50, 400);
  EXPECT_EQ(again.weight.to_vector<float>(), w);
}

TEST(NnLinear, ForwardAndShapes) {
  nn::Linear fc(3, 2);
  fc.load_state_dict({{"weight", Tensor::from_vector<float>({1, 2, 3, -1, 0, 1}, {2, 3})},
                      {"bias", Tensor::from_vector<float>({0.5, -0.5}, {2})}});
  Tensor x = Tensor::from_vector<float>({1, 1, 1, 2, 0, -1}, {2, 3});
  EXPECT_EQ(fc.forward(x).to_vector<float>(), (std::vector<float>{6.5, -0.5, -0.5, -3.5}));
  EXPECT_EQ(fc.forward(Tensor::zeros({4, 5, 3})).shape(), (Shape{4, 5, 2}));
  nn::Linear no_bias(3, 2, false);
  EXPECT_FALSE(no_bias.bias.defined());
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
  EXPECT_THROW(nn::Linear(0, 2), Error);
  EXPECT_TRUE(contains(error_of([&] { fc.forward(Tensor::zeros({2, 4})); }), "got shape [2, 4]"));
}

TEST(NnLinear, GradcheckThroughModuleParameters) {
  nn::Linear fc(3, 2, true, DType::f64);
  Tensor x = shallow::testing::rand_input({4, 3}, 3);
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return fc.forward(in[0]); },
                        {x, fc.weight, fc.bias}));
}

TEST(NnActivation, ModulesApplyTheirOps) {
  Tensor x = Tensor::from_vector<float>({-2, -0.5, 0, 0.5, 3}, {5});
  EXPECT_TRUE(all_close(nn::ReLU().forward(x), relu(x), 0, 0));
  EXPECT_TRUE(all_close(nn::GELU().forward(x), gelu(x), 0, 0));
  EXPECT_TRUE(all_close(nn::GELU("tanh").forward(x), gelu(x, "tanh"), 0, 0));
  EXPECT_FALSE(all_close(nn::GELU("tanh").forward(x), gelu(x), 1e-7, 0));
  EXPECT_TRUE(all_close(nn::QuickGELU().forward(x), quick_gelu(x), 0, 0));
  EXPECT_TRUE(all_close(nn::ELU(0.5).forward(x), elu(x, 0.5), 0, 0));
  EXPECT_TRUE(all_close(nn::Tanh().forward(x), tanh(x), 0, 0));
  EXPECT_TRUE(all_close(nn::Sigmoid().forward(x), sigmoid(x), 0, 0));
  EXPECT_EQ(nn::Identity().forward(x).impl_ptr(), x.impl_ptr());
  EXPECT_THROW(nn::GELU("fast"), Error);
  EXPECT_EQ(nn::Flatten().forward(Tensor::zeros({2, 3, 4, 5})).shape(), (Shape{2, 60}));
  EXPECT_EQ(nn::Flatten(0, 1).forward(Tensor::zeros({2, 3, 4})).shape(), (Shape{6, 4}));
}

TEST(NnContainer, SequentialAndModuleList) {
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Flatten>());
  seq->push_back(std::make_shared<nn::Linear>(6, 2));
  EXPECT_EQ(seq->forward(Tensor::zeros({4, 2, 3})).shape(), (Shape{4, 2}));
  EXPECT_EQ(seq->size(), 2u);
  EXPECT_EQ((*seq)[1]->type_name(), "Linear");
  EXPECT_THROW((*seq)[2], Error);

  nn::ModuleList list;
  for (int i = 0; i < 3; ++i) list.push_back(std::make_shared<nn::Linear>(2, 2));
  EXPECT_EQ(list.named_parameters()[4].first, "2.weight");
  EXPECT_EQ(list.at<nn::Linear>(1)->out_features(), 2);
  EXPECT_THROW(list.at<nn::ReLU>(1), Error);
  EXPECT_THROW(list.forward(Tensor::zeros({2})), Error);  // holds modules, no forward
}

// ---- layers built on the norm, conv, dropout and attention ops

namespace {

// Loads "<prefix>.<name>" fixture tensors into every parameter and buffer of m.
void load_from_fixture(nn::Module& m, const Fixture& f, const std::string& prefix) {
  nn::StateDict s;
  for (auto& [name, _] : m.state_dict())
    if (f.has(prefix + "." + name)) s[name] = f.get(prefix + "." + name);
  m.load_state_dict(s, false);
}

}  // namespace

TEST(NnBatchNorm, MatchesPyTorchAcrossTrainAndEval) {
  Fixture f("nn");
  nn::BatchNorm2d bn(3, {.momentum = 0.2});
  // Only the affine parameters: the fixture's running statistics are the expected results.
  bn.load_state_dict({{"weight", f.get("bn.weight")}, {"bias", f.get("bn.bias")}}, false);
  EXPECT_EQ(bn.num_batches_tracked.dtype(), DType::i64);
  EXPECT_TRUE(all_close(bn.forward(f.get("bn.x1")), f.get("bn.train.y1"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(bn.forward(f.get("bn.x2")), f.get("bn.train.y2"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(bn.running_mean, f.get("bn.running_mean"), 1e-6, 1e-5));
  EXPECT_TRUE(all_close(bn.running_var, f.get("bn.running_var"), 1e-6, 1e-5));
  EXPECT_EQ(bn.num_batches_tracked.item(), 2);
  bn.eval();
  EXPECT_TRUE(all_close(bn.forward(f.get("bn.x1")), f.get("bn.eval.y1"), 1e-5, 1e-5));
  EXPECT_EQ(bn.num_batches_tracked.item(), 2);  // eval leaves the statistics alone
  EXPECT_TRUE(all_close(bn.running_mean, f.get("bn.running_mean"), 1e-6, 1e-5));
  // The running statistics are state: saved by name, as PyTorch's.
  nn::StateDict s = bn.state_dict();
  EXPECT_EQ(s.count("running_mean") + s.count("running_var") + s.count("num_batches_tracked"), 3u);
}

TEST(NnBatchNorm, WithoutRunningStatsAndErrors) {
  nn::BatchNorm1d bn(4, {.affine = false, .track_running_stats = false});
  EXPECT_TRUE(bn.state_dict().empty());
  manual_seed(3);
  Tensor x = randn({6, 4}) * 3.0 + 1.0;
  bn.eval();  // without running statistics, eval normalizes with the batch's own
  Tensor y = bn.forward(x);
  EXPECT_TRUE(all_close(mean(y, {0}), Tensor::zeros({4}), 1e-5, 0));
  EXPECT_EQ(bn.forward(Tensor::zeros({2, 4, 5})).shape(), (Shape{2, 4, 5}));
  EXPECT_TRUE(contains(error_of([&] { bn.forward(Tensor::zeros({2, 4, 5, 6})); }), "BatchNorm1d: expected a 2-D or 3-D input"));
  nn::BatchNorm2d bn2(4);
  EXPECT_TRUE(contains(error_of([&] { bn2.forward(Tensor::zeros({2, 3, 5, 5})); }), "got shape [2, 3, 5, 5]"));
}

TEST(NnDropout, TrainingZeroesAndScalesEvalPassesThrough) {
  manual_seed(11);
  nn::Dropout drop(0.25);
  Tensor x = Tensor::ones({4000});
  std::vector<float> y = drop.forward(x).to_vector<float>();
  int64_t zeros = 0;
  for (float v : y) {
    if (v == 0.0f) ++zeros;
    else EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
  }
  EXPECT_NEAR(double(zeros) / 4000.0, 0.25, 0.03);
  drop.eval();
  EXPECT_TRUE(all_close(drop.forward(x), x, 0, 0));
  EXPECT_THROW(nn::Dropout(1.5), Error);

  nn::Dropout2d drop2(0.5);
  Tensor maps = drop2.forward(Tensor::ones({8, 16, 3, 3}));
  std::vector<float> m = maps.to_vector<float>();
  int64_t dropped = 0;
  for (size_t c = 0; c < m.size(); c += 9) {  // every channel all zero or all scaled
    for (size_t k = 1; k < 9; ++k) EXPECT_EQ(m[c + k], m[c]);
    dropped += m[c] == 0.0f;
  }
  EXPECT_GT(dropped, 20);
  EXPECT_LT(dropped, 108);
  drop2.eval();
  EXPECT_TRUE(all_close(drop2.forward(Tensor::ones({2, 3, 4, 4})), Tensor::ones({2, 3, 4, 4}), 0, 0));
}

TEST(NnLayerNorm, MatchesPyTorch) {
  Fixture f("nn");
  nn::LayerNorm ln(Shape{4, 6}, 1e-6);
  load_from_fixture(ln, f, "ln");
  EXPECT_TRUE(all_close(ln.forward(f.get("ln.x")), f.get("ln.y"), 1e-5, 1e-5));
  // A non-contiguous input gives the same result.
  Tensor xt = f.get("ln.x").transpose(0, 1).contiguous().transpose(0, 1);
  EXPECT_TRUE(all_close(ln.forward(xt), f.get("ln.y"), 1e-5, 1e-5));
  EXPECT_THROW(ln.forward(Tensor::zeros({2, 6, 4})), Error);
  nn::LayerNorm plain(Shape{5}, 1e-5, false);
  EXPECT_TRUE(plain.named_parameters().empty());
}

TEST(NnConv, MatchesPyTorch) {
  Fixture f("nn");
  nn::Conv2d conv(4, 6, {3, 2}, {.stride = {2, 1}, .padding = {1, 0}, .groups = 2});
  EXPECT_EQ(conv.weight.shape(), (Shape{6, 2, 3, 2}));
  load_from_fixture(conv, f, "conv2d");
  EXPECT_TRUE(all_close(conv.forward(f.get("conv2d.x")), f.get("conv2d.y"), 1e-5, 1e-5));
  nn::Conv1d conv1(3, 5, 3, {.padding = 2, .dilation = 2});
  load_from_fixture(conv1, f, "conv1d");
  EXPECT_TRUE(all_close(conv1.forward(f.get("conv1d.x")), f.get("conv1d.y"), 1e-5, 1e-5));

  EXPECT_THROW(nn::Conv2d(4, 6, {3, 3}, {.groups = 3}), Error);
  EXPECT_TRUE(contains(error_of([&] { conv.forward(Tensor::zeros({1, 3, 8, 8})); }), "expected 4 input channels"));
  EXPECT_THROW(conv.forward(Tensor::zeros({4, 8, 8})), Error);
  // Default init: |w| <= 1/sqrt(fan_in), fan_in = in/groups * kh * kw.
  nn::Conv2d big(8, 32, {3, 3}, {.bias = false});
  EXPECT_FALSE(big.bias.defined());
  const double bound = 1.0 / std::sqrt(8.0 * 9.0);
  for (float v : big.weight.to_vector<float>()) EXPECT_LE(std::fabs(v), bound);
}

TEST(NnAttention, MatchesPyTorch) {
  Fixture f("nn");
  nn::MultiheadAttention mha(8, 2);
  std::vector<std::string> names;
  for (auto& [n, _] : mha.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}));
  load_from_fixture(mha, f, "mha");
  Tensor q = f.get("mha.q"), k = f.get("mha.k"), v = f.get("mha.v");
  Tensor pad = f.get("mha.key_padding_mask");

  Tensor x = q.clone().detach().set_requires_grad();
  Tensor y = mha.forward(x);
  EXPECT_TRUE(all_close(y, f.get("mha.self.out"), 1e-5, 1e-5));
  sum(y * y).backward();
  EXPECT_TRUE(all_close(x.grad(), f.get("mha.self.grad_x"), 1e-5, 1e-4));
  EXPECT_TRUE(all_close(mha.in_proj_weight.grad(), f.get("mha.self.grad_in_proj_weight"), 1e-5, 1e-4));
  EXPECT_TRUE(all_close(mha.out_proj->bias.grad(), f.get("mha.self.grad_out_proj_bias"), 1e-5, 1e-4));

  EXPECT_TRUE(all_close(mha.forward(q, k, v, pad), f.get("mha.cross_pad.out"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(mha.forward(q, k, v, pad, f.get("mha.attn_mask")), f.get("mha.cross_both.out"), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(mha.forward(q, k, v, Tensor(), f.get("mha.bool_mask")), f.get("mha.cross_bool.out"), 1e-5, 1e-5));
  // The same inputs as separate tensors take the three-projection path, with the same result.
  EXPECT_TRUE(all_close(mha.forward(q, q.clone(), q.clone()), f.get("mha.self.out"), 1e-5, 1e-5));

  nn::MultiheadAttention bf(8, 2, {.batch_first = true});
  bf.load_state_dict(mha.state_dict());
  EXPECT_TRUE(all_close(bf.forward(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), pad),
                        f.get("mha.batch_first.out"), 1e-5, 1e-5));
  // Unbatched: the second sequence of the batch on its own.
  EXPECT_TRUE(all_close(mha.forward(q.select(1, 1), k.select(1, 1), v.select(1, 1), pad.select(0, 1)),
                        f.get("mha.cross_pad.out").select(1, 1), 1e-5, 1e-5));
}

TEST(NnAttention, ErrorsNameTheShapes) {
  nn::MultiheadAttention mha(8, 2);
  Tensor q = Tensor::zeros({5, 3, 8}), kv = Tensor::zeros({7, 3, 8});
  EXPECT_THROW(nn::MultiheadAttention(8, 3), Error);
  EXPECT_TRUE(contains(error_of([&] { mha.forward(Tensor::zeros({5, 3, 6})); }), "embed_dim is 8"));
  EXPECT_TRUE(contains(error_of([&] { mha.forward(q, kv, kv, Tensor::zeros({3, 5}, DType::u8)); }),
                       "key_padding_mask must be [N, S] = [3, 7], got [3, 5]"));
  EXPECT_TRUE(contains(error_of([&] { mha.forward(q, kv, kv, Tensor(), Tensor::zeros({5, 5})); }),
                       "attn_mask must be [L, S] = [5, 7]"));
  EXPECT_THROW(mha.forward(q, kv, kv, Tensor::zeros({3, 7}, DType::i64)), Error);
  EXPECT_THROW(mha.forward(q, Tensor::zeros({7, 2, 8}), Tensor::zeros({7, 2, 8})), Error);
}

TEST(NnAttention, GradcheckAndDropoutPath) {
  nn::MultiheadAttention mha(4, 2, {.dropout = 0.3, .dtype = DType::f64});
  Tensor q = shallow::testing::rand_input({3, 2, 4}, 5), kv = shallow::testing::rand_input({4, 2, 4}, 6);
  Tensor pad = Tensor::zeros({2, 4}, DType::u8);
  pad.data<uint8_t>()[3] = 1;
  mha.eval();
  EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return mha.forward(in[0], in[1], in[1], pad); },
                        {q, kv, mha.in_proj_weight, mha.in_proj_bias}));
  // In training, attention dropout takes the unfused path: without dropping it would agree
  // with eval, and with dropping it differs.
  Tensor eval_out = mha.forward(q, kv, kv, pad);
  mha.train();
  EXPECT_FALSE(all_close(mha.forward(q, kv, kv, pad), eval_out, 1e-9, 0));
  nn::MultiheadAttention same(4, 2, {.dropout = 0.0, .dtype = DType::f64});
  same.load_state_dict(mha.state_dict());
  EXPECT_TRUE(all_close(same.forward(q, kv, kv, pad), eval_out, 1e-12, 1e-12));
}

// A Conv2d and a BatchNorm2d (and a residual and a ReLU) folded into one call in evaluation,
// against the modules' forwards; in training, the batch statistics as the modules use them.
TEST(NnConvBn, FoldedInEvaluationEqualsTheModules) {
  nn::Conv2d conv(3, 5, {3, 3}, {.padding = {1, 1}});  // with a bias: it moves through the norm
  nn::BatchNorm2d bn(5, {.eps = 1e-3});
  bn.running_mean.copy_(rand_input({5}, 1));
  bn.running_var.copy_(add(rand_input({5}, 2, 0.0, 1.0), 0.5));
  bn.weight.detach().copy_(rand_input({5}, 3));
  bn.bias.detach().copy_(rand_input({5}, 4));
  const Tensor x = rand_input({2, 3, 6, 6}, 5).to(DType::f32);
  const Tensor residual = rand_input({2, 5, 6, 6}, 6).to(DType::f32);
  bn.eval();
  NoGrad no_grad;
  for (bool with_relu : {false, true}) {
    Tensor want = add(bn.forward(conv.forward(x)), residual);
    if (with_relu) want = relu(want);
    EXPECT_TRUE(all_close(nn::conv_bn(conv, bn, x, with_relu, residual), want, 1e-5, 1e-5));
  }
  bn.train();
  const Tensor batch_stats = relu(bn.forward(conv.forward(x)));
  EXPECT_TRUE(all_close(nn::conv_bn(conv, bn, x, true), batch_stats, 1e-5, 1e-5));
}
