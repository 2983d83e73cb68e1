// Optimizers against PyTorch: the same initial weights and batches give the same losses and
// parameters step by step; state dicts resume exactly; clip_grad_norm_ and the schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "tests/support/fixtures.h"

using namespace shallow;
using shallow::testing::all_close;
using shallow::testing::Fixture;

namespace {

const std::vector<std::string> kParamNames = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};

// The fixture's MLP: Linear(6, 16) -> tanh -> Linear(16, 4), weights loaded from "init.*".
struct Mlp {
  std::shared_ptr<nn::Sequential> net;
  explicit Mlp(const Fixture& f) {
    net = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Linear>(6, 16), std::make_shared<nn::Tanh>(),
        std::make_shared<nn::Linear>(16, 4)});
    net->load_state_dict({{"0.weight", f.get("init.fc1.weight")}, {"0.bias", f.get("init.fc1.bias")},
                          {"2.weight", f.get("init.fc2.weight")}, {"2.bias", f.get("init.fc2.bias")}});
  }
  // In the fixture's naming and order.
  std::vector<Tensor> params() const {
    return {net->parameter("0.weight"), net->parameter("0.bias"),
            net->parameter("2.weight"), net->parameter("2.bias")};
  }
};

Tensor mse(const Tensor& y, const Tensor& t) {
  Tensor d = y - t;
  return mean(d * d);
}

// Trains `steps` steps from batch `first`; returns the losses.
std::vector<double> train(Mlp& m, optim::Optimizer& opt, const Fixture& f, int64_t first,
                          int64_t steps) {
  Tensor xs = f.get("data.x"), ys = f.get("data.y");
  std::vector<double> losses;
  for (int64_t i = first; i < first + steps; ++i) {
    opt.zero_grad();
    Tensor loss = mse(m.net->forward(xs.select(0, i)), ys.select(0, i));
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(const std::vector<Tensor>&)>;

void expect_matches_pytorch(const std::string& config, const MakeOptimizer& make) {
  SCOPED_TRACE(config);
  Fixture f("optim");
  Mlp m(f);
  auto opt = make(m.params());
  std::vector<double> losses = train(m, *opt, f, 0, 20);
  EXPECT_TRUE(all_close(Tensor::from_vector(losses, {20}), f.get(config + ".losses"), 1e-6, 1e-5));
  std::vector<Tensor> p = m.params();
  for (size_t i = 0; i < p.size(); ++i)
    EXPECT_TRUE(all_close(p[i], f.get(config + "." + kParamNames[i]), 1e-6, 1e-5)) << kParamNames[i];
}

std::vector<optim::ParamGroup> weights_and_biases(const std::vector<Tensor>& p, double lr) {
  return {{"weights", {p[0], p[2]}, {}, {}}, {"biases", {p[1], p[3]}, lr / 2, 0.0}};
}

}  // namespace

TEST(Optim, SgdNesterovMatchesPyTorch) {
  expect_matches_pytorch("sgd_nesterov", [](const std::vector<Tensor>& p) {
    return std::make_unique<optim::SGD>(p, optim::SgdOptions{.lr = 0.05, .momentum = 0.9,
                                                             .weight_decay = 1e-3, .nesterov = true});
  });
}

TEST(Optim, SgdDampeningMatchesPyTorch) {
  expect_matches_pytorch("sgd_dampening", [](const std::vector<Tensor>& p) {
    return std::make_unique<optim::SGD>(p, optim::SgdOptions{.lr = 0.05, .momentum = 0.8,
                                                             .dampening = 0.3, .weight_decay = 1e-2});
  });
}

TEST(Optim, SgdPlainMatchesPyTorch) {
  expect_matches_pytorch("sgd_plain", [](const std::vector<Tensor>& p) {
    return std::make_unique<optim::SGD>(p, optim::SgdOptions{.lr = 0.1});
  });
}

TEST(Optim, AdamMatchesPyTorch) {
  expect_matches_pytorch("adam", [](const std::vector<Tensor>& p) {
    return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 1e-2, .beta2 = 0.99,
                                                               .weight_decay = 1e-3});
  });
}

TEST(Optim, AdamAmsgradMatchesPyTorch) {
  expect_matches_pytorch("adam_amsgrad", [](const std::vector<Tensor>& p) {
    return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 1e-2, .amsgrad = true});
  });
}

TEST(Optim, AdamWMatchesPyTorch) {
  expect_matches_pytorch("adamw", [](const std::vector<Tensor>& p) {
    return std::make_unique<optim::AdamW>(p, optim::AdamWOptions{.lr = 1e-2, .weight_decay = 0.1});
  });
}

TEST(Optim, AdamWParamGroupsMatchPyTorch) {
  expect_matches_pytorch("adamw_groups", [](const std::vector<Tensor>& p) {
    return std::make_unique<optim::AdamW>(weights_and_biases(p, 1e-2),
                                          optim::AdamWOptions{.lr = 1e-2, .weight_decay = 0.1});
  });
}

TEST(Optim, ConfigsDiffer) {
  // Guards the comparisons above: the fixtures of different optimizers are not all alike.
  Fixture f("optim");
  EXPECT_FALSE(all_close(f.get("adam.fc1.weight"), f.get("adamw.fc1.weight"), 1e-6, 1e-5));
  EXPECT_FALSE(all_close(f.get("adamw.fc1.bias"), f.get("adamw_groups.fc1.bias"), 1e-6, 1e-5));
  EXPECT_FALSE(all_close(f.get("sgd_nesterov.fc2.weight"), f.get("sgd_dampening.fc2.weight"), 1e-6, 1e-5));
}

TEST(Optim, StateDictResumesExactly) {
  Fixture f("optim");
  for (bool amsgrad : {false, true}) {
    SCOPED_TRACE(amsgrad ? "amsgrad" : "adam");
    optim::AdamOptions o{.lr = 1e-2, .weight_decay = 1e-3, .amsgrad = amsgrad};
    Mlp straight(f);
    optim::Adam a(straight.params(), o);
    train(straight, a, f, 0, 20);

    Mlp first(f);
    optim::Adam b(first.params(), o);
    train(first, b, f, 0, 10);
    nn::StateDict model = first.net->state_dict();
    for (auto& [name, t] : model) t = t.clone();  // a module's state dict shares its storage
    optim::StateDict saved = b.state_dict();
    EXPECT_EQ(saved.at("state.0.step").item(), 10);
    train(first, b, f, 10, 3);  // the saved copies must not move with further training

    Mlp resumed(f);
    resumed.net->load_state_dict(model);
    optim::Adam c(resumed.params(), o);
    c.load_state_dict(saved);
    train(resumed, c, f, 10, 10);
    std::vector<Tensor> pa = straight.params(), pc = resumed.params();
    for (size_t i = 0; i < pa.size(); ++i)
      EXPECT_EQ(pa[i].to_vector<float>(), pc[i].to_vector<float>()) << kParamNames[i];
  }
}

TEST(Optim, SgdStateDictRoundTripAndErrors) {
  Fixture f("optim");
  Mlp m(f);
  optim::SGD sgd(weights_and_biases(m.params(), 0.1), {.lr = 0.1, .momentum = 0.9});
  train(m, sgd, f, 0, 2);
  optim::StateDict s = sgd.state_dict();
  EXPECT_EQ(s.count("state.3.momentum_buffer"), 1u);
  EXPECT_DOUBLE_EQ(s.at("groups.1.lr").item(), 0.05);

  Mlp m2(f);
  optim::SGD other(weights_and_biases(m2.params(), 0.1), {.lr = 0.1, .momentum = 0.9});
  other.load_state_dict(s);
  EXPECT_DOUBLE_EQ(other.lr(1), 0.05);

  optim::StateDict bad = s;
  bad["state.0.momentum_buffer"] = Tensor::zeros({3, 3});
  bad["state.9.step"] = Tensor::scalar(1, DType::i64);
  bad["state.1.exp_avg"] = Tensor::zeros({16});
  try {
    other.load_state_dict(bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("state.0.momentum_buffer: expected shape [16, 6], got [3, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("state.9.step: parameter 9 out of range"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no state named 'exp_avg'"), std::string::npos) << msg;
  }
  optim::StateDict missing = s;
  missing.erase("groups.0.lr");
  EXPECT_THROW(other.load_state_dict(missing), Error);
}

TEST(Optim, BadArgumentsThrow) {
  Tensor p = Tensor::zeros({2}).set_requires_grad();
  EXPECT_THROW(optim::SGD(std::vector<Tensor>{}, {}), Error);
  EXPECT_THROW(optim::SGD({p, p}, {}), Error);
  EXPECT_THROW(optim::SGD({p}, {.momentum = 0.0, .nesterov = true}), Error);
  EXPECT_THROW(optim::SGD({p}, {.lr = -1}), Error);
  EXPECT_THROW(optim::Adam({p}, {.beta1 = 1.0}), Error);
  EXPECT_THROW(optim::Adam({Tensor::zeros({2}, DType::i64)}, {}), Error);
  Tensor w = Tensor::ones({2}).set_requires_grad();
  EXPECT_THROW(optim::Adam({mul(w, 2.0)}, {}), Error);  // not a leaf
}

TEST(Optim, ParametersWithoutGradAreSkipped) {
  Tensor a = Tensor::ones({2}).set_requires_grad(), b = Tensor::ones({2}).set_requires_grad();
  optim::AdamW opt({a, b}, {.lr = 0.1});
  sum(a * a).backward();
  opt.step();
  EXPECT_NE(a.to_vector<float>()[0], 1.0f);
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1, 1}));  // no grad: not even decayed
  EXPECT_EQ(opt.state_dict().count("state.1.step"), 0u);
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

TEST(Optim, DoubleParameters) {
  // f64 follows the same rule: one SGD step is p - lr * (g + wd p).
  Tensor p = Tensor::from_vector<double>({1.0, -2.0}, {2}).set_requires_grad();
  optim::SGD opt({p}, {.lr = 0.5, .weight_decay = 0.1});
  sum(p * p).backward();  // g = 2p
  opt.step();
  EXPECT_EQ(p.to_vector<double>(), (std::vector<double>{1.0 - 0.5 * 2.1, -2.0 + 0.5 * 4.2}));
}

TEST(Optim, ClipGradNormMatchesPyTorch) {
  Fixture f("optim");
  struct Case { const char* tag; double max_norm, norm_type; };
  for (Case c : {Case{"l2", 1.0, 2.0}, Case{"l1", 2.0, 1.0}, Case{"inf", 0.5, optim::kInfNorm},
                 Case{"l3", 1.5, 3.0}, Case{"noclip", 100.0, 2.0}}) {
    SCOPED_TRACE(c.tag);
    std::vector<Tensor> params;
    for (int i = 0; i < 3; ++i) {
      Tensor g = f.get("clip.grad" + std::to_string(i)).clone();
      Tensor p = Tensor::zeros(g.shape()).set_requires_grad();
      p.set_grad(g);
      params.push_back(p);
    }
    params.push_back(Tensor::zeros({2}).set_requires_grad());  // no grad: ignored
    const double total = optim::clip_grad_norm_(params, c.max_norm, c.norm_type);
    EXPECT_NEAR(total, f.get(std::string("clip.") + c.tag + ".total").item(), 1e-6 * total);
    for (int i = 0; i < 3; ++i)
      EXPECT_TRUE(all_close(params[size_t(i)].grad(),
                            f.get(std::string("clip.") + c.tag + ".grad" + std::to_string(i)), 1e-7, 1e-6));
  }
  EXPECT_THROW(optim::clip_grad_norm_({}, 1.0, 0.0), Error);
}

TEST(Optim, SchedulesMatchPyTorch) {
  Fixture f("optim");
  Tensor p = Tensor::zeros({1}).set_requires_grad();
  auto check = [&](optim::LRSchedule& s, optim::Optimizer& opt, const std::string& key) {
    std::vector<double> want = f.get(key).to_vector<double>();
    for (size_t step = 0; step < want.size(); ++step) {
      if (step > 0) s.step();
      EXPECT_NEAR(opt.lr(), want[step], 1e-12 + 1e-9 * want[step]) << key << " step " << step;
      EXPECT_DOUBLE_EQ(s.lr_at(int64_t(step)), opt.lr());
    }
  };
  {
    optim::SGD opt({p}, {.lr = 0.1});
    optim::CosineWithWarmup s(opt, 0, 20, 1e-3);
    check(s, opt, "sched.cosine");
  }
  {
    optim::SGD opt({p}, {.lr = 0.1});
    optim::CosineWithWarmup s(opt, 5, 20, 1e-3);
    check(s, opt, "sched.warmup_cosine");
  }
  {
    optim::SGD opt({p}, {.lr = 0.1});
    optim::StepDecay s(opt, 3, 0.5);
    check(s, opt, "sched.step");
  }
}

TEST(Optim, ScheduleScalesEachGroupAndResumes) {
  Tensor a = Tensor::zeros({1}).set_requires_grad(), b = Tensor::zeros({1}).set_requires_grad();
  optim::SGD opt(std::vector<optim::ParamGroup>{{"a", {a}, 0.1, {}}, {"b", {b}, 0.01, {}}}, {});
  optim::StepDecay s(opt, 2, 0.1);
  for (int i = 0; i < 4; ++i) s.step();
  EXPECT_NEAR(opt.lr(0), 0.1 * 0.01, 1e-15);
  EXPECT_NEAR(opt.lr(1), 0.01 * 0.01, 1e-15);
  s.set_step(1);
  EXPECT_DOUBLE_EQ(opt.lr(0), 0.1);
  EXPECT_THROW(optim::CosineWithWarmup(opt, 10, 10), Error);
}
