// The contrastive head against its PyTorch definition (tests/reference/eeg_contrastive.py):
// embeddings, loss and every gradient; its temperature; and its errors.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops.h"
#include "models/contrastive.h"
#include "tests/models/test_eeg_support.h"
#include "tests/support/fixtures.h"

namespace shallow::models {
namespace {

using testing::all_close;
using testing::Fixture;
using namespace testing::eeg;

// The sizes and seeds of tests/reference/eeg_contrastive.py.
constexpr uint64_t kWeightSeed = 0xC0DE, kEegSeed = 0xEE6, kImageSeed = 0x1A6E;
constexpr int64_t kN = 6, kEegDim = 10, kImageDim = 12, kShared = 8;

ContrastiveHead make_head(double temperature) {
  return ContrastiveHead({.eeg_dim = kEegDim, .image_dim = kImageDim, .shared_dim = kShared,
                          .init_temperature = temperature});
}

TEST(ContrastiveHead, ParametersAndInitialScale) {
  ContrastiveHead head = make_head(0.07);
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : head.named_parameters()) shapes[name] = t.shape();
  EXPECT_EQ(shapes, (std::map<std::string, Shape>{{"eeg_proj.weight", {kShared, kEegDim}},
                                                  {"eeg_proj.bias", {kShared}},
                                                  {"image_proj.weight", {kShared, kImageDim}},
                                                  {"image_proj.bias", {kShared}},
                                                  {"logit_scale", {}}}));
  EXPECT_NEAR(head.parameter("logit_scale").item(), std::log(1.0 / 0.07), 1e-6);
  EXPECT_NEAR(head.logit_scale(), 1.0 / 0.07, 1e-4);
  EXPECT_TRUE(head.parameter("logit_scale").requires_grad());
}

TEST(ContrastiveHead, EmbeddingsLossAndGradientsMatchPyTorch) {
  const Fixture f("eeg_contrastive");
  for (const auto& [name, temperature] : {std::pair{"t007", 0.07}, std::pair{"t05", 0.5}}) {
    SCOPED_TRACE(name);
    const std::string c = name;
    ContrastiveHead head = make_head(temperature);
    fill_deterministic(head, kWeightSeed);
    Tensor eeg = deterministic_tensor(kEegSeed, {kN, kEegDim}).set_requires_grad(true);
    Tensor image = deterministic_tensor(kImageSeed, {kN, kImageDim}).set_requires_grad(true);
    const Tensor e = head.embed_eeg(eeg), i = head.embed_image(image);
    const Tensor loss = head.loss(e, i);
    loss.backward();

    EXPECT_TRUE(all_close(e, f.get(c + ".eeg_embedded"), 1e-6, 1e-5));
    EXPECT_TRUE(all_close(i, f.get(c + ".image_embedded"), 1e-6, 1e-5));
    EXPECT_TRUE(all_close(loss, f.get(c + ".loss"), 1e-6, 1e-5));
    for (const auto& [pname, p] : head.named_parameters())
      EXPECT_TRUE(all_close(p.grad(), f.get(c + ".grad." + pname), 1e-5, 1e-4)) << pname;
    EXPECT_TRUE(all_close(eeg.grad(), f.get(c + ".grad.eeg_features"), 1e-5, 1e-4));
    EXPECT_TRUE(all_close(image.grad(), f.get(c + ".grad.image_features"), 1e-5, 1e-4));
  }
}

TEST(ContrastiveHead, EmbeddingsHaveUnitNorm) {
  ContrastiveHead head = make_head(0.07);
  NoGrad no_grad;
  const Tensor e = head.embed_eeg(randn({5, kEegDim}));
  const Tensor norms = sqrt(sum(e * e, {1}));
  EXPECT_TRUE(all_close(norms, Tensor::ones({5}), 1e-6, 0.0));
}

// Two limits of InfoNCE: identical embeddings for every pair give log(N) (nothing to tell
// apart); orthogonal, matched pairs at a large scale give almost zero.
TEST(ContrastiveHead, LossLimits) {
  ContrastiveHead head = make_head(0.07);
  NoGrad no_grad;
  const Tensor same = Tensor::ones({4, 3}) / std::sqrt(3.0);
  EXPECT_NEAR(head.loss(same, same).item(), std::log(4.0), 1e-6);
  Tensor eye = Tensor::zeros({4, 4});
  for (int64_t k = 0; k < 4; ++k) eye.data<float>()[k * 4 + k] = 1.0f;
  EXPECT_LT(head.loss(eye, eye).item(), 1e-5);  // scale 14.3: exp(-14.3) off-diagonal
}

TEST(ContrastiveHead, RejectsBadShapesAndSizes) {
  ContrastiveHead head = make_head(0.07);
  EXPECT_THROW(head.embed_eeg(Tensor::zeros({4, kEegDim + 1})), Error);
  EXPECT_THROW(head.embed_eeg(Tensor::zeros({kEegDim})), Error);
  EXPECT_THROW(head.embed_image(Tensor::zeros({4, kImageDim - 1})), Error);
  try {
    head.loss(Tensor::zeros({4, kShared}), Tensor::zeros({5, kShared}));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("ContrastiveHead"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 8]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[5, 8]"), std::string::npos) << msg;
  }
  EXPECT_THROW(head.loss(Tensor::zeros({0, kShared}), Tensor::zeros({0, kShared})), Error);
  EXPECT_THROW(ContrastiveHead({.eeg_dim = 0, .image_dim = 4}), Error);
  EXPECT_THROW(ContrastiveHead({.eeg_dim = 4, .image_dim = 4, .init_temperature = 0.0}), Error);
}

}  // namespace
}  // namespace shallow::models
