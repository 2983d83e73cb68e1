// Training end to end: a small MLP and a small conv net, from PyTorch's initial weights on fixed
// synthetic data, follow PyTorch's loss at every step (tests/reference/training.py); from the
// engine's own initialization they still learn the task. An untrained or broken model cannot
// reach the thresholds (chance level is log 3 = 1.10 and log 2 = 0.69).
#include <gtest/gtest.h>

#include <memory>

#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "tests/support/fixtures.h"

using namespace shallow;
using shallow::testing::all_close;
using shallow::testing::Fixture;

namespace {

// Mean cross-entropy of logits [B, C] against i64 labels [B], from basic ops.
Tensor cross_entropy_loss(const Tensor& logits, const Tensor& labels) {
  const int64_t b = logits.size(0), c = logits.size(1);
  Tensor one_hot = Tensor::zeros({b, c}, logits.dtype());
  const int64_t* y = labels.contiguous().data<int64_t>();
  for (int64_t i = 0; i < b; ++i) one_hot.data<float>()[i * c + y[i]] = 1.0f;
  Tensor shifted = logits - max(logits, {1}, true).detach();
  Tensor log_probs = shifted - log(sum(exp(shifted), {1}, true));
  return neg(mean(sum(log_probs * one_hot, {1})));
}

double accuracy(const Tensor& logits, const Tensor& labels) {
  std::vector<int64_t> pred = argmax(logits, 1).to_vector<int64_t>();
  std::vector<int64_t> want = labels.to_vector<int64_t>();
  int64_t right = 0;
  for (size_t i = 0; i < pred.size(); ++i) right += pred[i] == want[i];
  return double(right) / double(pred.size());
}

// The fixture's tensors under "<prefix>." as a state dict.
nn::StateDict fixture_state(const Fixture& f, const std::string& prefix,
                            const std::vector<std::string>& names) {
  nn::StateDict s;
  for (const auto& n : names) s[n] = f.get(prefix + "." + n);
  return s;
}

std::shared_ptr<nn::Sequential> make_mlp() {
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(8, 32), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(32, 3)});
}

std::shared_ptr<nn::Sequential> make_conv_net() {
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(1, 4, Int2{3, 3}, nn::Conv2dOptions{.padding = {1, 1}}),
      std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(Int2{2, 2}), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(64, 2)});
}

// Steps through the data in order, `batch` rows at a time; returns the loss of each step.
std::vector<double> train(nn::Module& model, optim::Optimizer& opt, const Tensor& x,
                          const Tensor& labels, int64_t steps, int64_t batch) {
  std::vector<double> losses;
  const int64_t n = x.size(0);
  for (int64_t step = 0; step < steps; ++step) {
    const int64_t i = (step * batch) % n;
    opt.zero_grad();
    Tensor loss = cross_entropy_loss(model.forward(x.slice(0, i, i + batch)), labels.slice(0, i, i + batch));
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}

}  // namespace

TEST(Training, MlpFollowsPyTorchLossTrajectory) {
  Fixture f("training");
  auto mlp = make_mlp();
  mlp->load_state_dict(fixture_state(f, "mlp.init", {"0.weight", "0.bias", "2.weight", "2.bias"}));
  optim::Adam opt(mlp->parameters(), {.lr = 1e-2});
  Tensor x = f.get("mlp.x"), labels = f.get("mlp.labels");
  std::vector<double> losses = train(*mlp, opt, x, labels, 40, 32);
  EXPECT_TRUE(all_close(Tensor::from_vector(losses, {40}), f.get("mlp.losses"), 1e-6, 1e-5));
  NoGrad no_grad;
  Tensor logits = mlp->forward(x);
  EXPECT_NEAR(cross_entropy_loss(logits, labels).item(), f.get("mlp.final_loss").item(), 1e-5);
  EXPECT_LT(cross_entropy_loss(logits, labels).item(), 0.3);
  EXPECT_GT(accuracy(logits, labels), 0.9);
}

TEST(Training, ConvNetFollowsPyTorchLossTrajectory) {
  Fixture f("training");
  auto net = make_conv_net();
  net->load_state_dict(fixture_state(f, "conv.init",
                                     {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                      "1.running_var", "1.num_batches_tracked", "5.weight", "5.bias"}));
  optim::SGD opt(net->parameters(), {.lr = 0.05, .momentum = 0.9});
  Tensor x = f.get("conv.x"), labels = f.get("conv.labels");
  std::vector<double> losses = train(*net, opt, x, labels, 30, 16);
  EXPECT_TRUE(all_close(Tensor::from_vector(losses, {30}), f.get("conv.losses"), 1e-5, 1e-4));
  EXPECT_TRUE(all_close(net->buffer("1.running_mean"), f.get("conv.running_mean"), 1e-5, 1e-4));
  EXPECT_TRUE(all_close(net->buffer("1.running_var"), f.get("conv.running_var"), 1e-5, 1e-4));
  EXPECT_EQ(net->buffer("1.num_batches_tracked").item(), 30);

  net->eval();  // batch norm now uses its running statistics
  NoGrad no_grad;
  Tensor logits = net->forward(x);
  EXPECT_NEAR(cross_entropy_loss(logits, labels).item(), f.get("conv.eval_loss").item(), 1e-4);
  EXPECT_LT(cross_entropy_loss(logits, labels).item(), 0.2);
  EXPECT_GT(accuracy(logits, labels), 0.95);
}

TEST(Training, OwnInitializationLearnsBothTasks) {
  Fixture f("training");
  {
    manual_seed(42);
    auto mlp = make_mlp();
    optim::AdamW opt(mlp->parameters(), {.lr = 1e-2, .weight_decay = 1e-4});
    Tensor x = f.get("mlp.x"), labels = f.get("mlp.labels");
    std::vector<double> losses = train(*mlp, opt, x, labels, 40, 32);
    NoGrad no_grad;
    EXPECT_GT(losses.front(), 0.9);  // starts near chance
    EXPECT_LT(cross_entropy_loss(mlp->forward(x), labels).item(), 0.35);
  }
  {
    manual_seed(43);
    auto net = make_conv_net();
    optim::SGD opt(net->parameters(), {.lr = 0.05, .momentum = 0.9, .nesterov = true});
    optim::CosineWithWarmup schedule(opt, 3, 30);
    Tensor x = f.get("conv.x"), labels = f.get("conv.labels");
    std::vector<double> losses;
    for (int64_t step = 0; step < 30; ++step) {
      const int64_t i = (step * 16) % 96;
      opt.zero_grad();
      Tensor loss = cross_entropy_loss(net->forward(x.slice(0, i, i + 16)), labels.slice(0, i, i + 16));
      loss.backward();
      optim::clip_grad_norm_(net->parameters(), 5.0);
      opt.step();
      schedule.step();
      losses.push_back(loss.item());
    }
    net->eval();
    NoGrad no_grad;
    Tensor logits = net->forward(x);
    EXPECT_LT(cross_entropy_loss(logits, labels).item(), 0.3);
    EXPECT_GT(accuracy(logits, labels), 0.9);
  }
}
