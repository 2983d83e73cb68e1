// Modules: registration and dotted names, state dicts and their strict checks, train/eval,
// initialization, and each layer against torch.nn on fixtures (tests/reference/nn.py).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "engine/nn.h"
#include "engine/ops.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradcheck.h"

using namespace shallow;
using shallow::testing::all_close;
using shallow::testing::Fixture;
using shallow::testing::gradcheck;

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

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

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
