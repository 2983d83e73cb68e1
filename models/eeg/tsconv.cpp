#include "models/eeg/tsconv.h"

#include "engine/nn/activation.h"
#include "engine/nn/batch_norm.h"
#include "engine/nn/conv.h"
#include "engine/nn/dropout.h"
#include "engine/nn/pool.h"
#include "models/eeg/input_check.h"
#include "models/eeg/projection_head.h"

namespace shallow::models {
namespace {

constexpr int64_t kTemporalKernel = 25, kPoolKernel = 51, kPoolStride = 5;

// einops' Rearrange('b e (h) (w) -> b (h w) e'): [N, E, H, W] -> [N, H*W, E].
class TokensLast : public nn::Module {
 public:
  TokensLast() : nn::Module("Rearrange") {}
  Tensor forward(const Tensor& x) override { return x.flatten(2).transpose(1, 2); }
};

}  // namespace

TsconvPatchEmbedding::TsconvPatchEmbedding(int64_t channels, double dropout)
    : nn::Module("PatchEmbedding") {
  const int64_t f = kFilters;
  tsconv_ = register_module(
      "tsconv", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                    std::make_shared<nn::Conv2d>(1, f, Int2{1, kTemporalKernel}),
                    std::make_shared<nn::AvgPool2d>(Int2{1, kPoolKernel}, Int2{1, kPoolStride}),
                    std::make_shared<nn::BatchNorm2d>(f),
                    std::make_shared<nn::ELU>(),
                    std::make_shared<nn::Conv2d>(f, f, Int2{channels, 1}),
                    std::make_shared<nn::BatchNorm2d>(f),
                    std::make_shared<nn::ELU>(),
                    std::make_shared<nn::Dropout>(dropout)}));
  projection_ = register_module(
      "projection", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                        std::make_shared<nn::Conv2d>(f, f, Int2{1, 1}),
                        std::make_shared<TokensLast>()}));
}

Tensor TsconvPatchEmbedding::forward(const Tensor& x) {
  check_rank(x, {3});
  return projection_->forward(tsconv_->forward(x.unsqueeze(1)));
}

int64_t TsconvPatchEmbedding::positions(int64_t times, const char* encoder) {
  const int64_t min_times = kTemporalKernel - 1 + kPoolKernel;
  SH_CHECK(times >= min_times, encoder, ": the TSConv stem needs at least ", min_times,
           " time points (a temporal kernel of ", kTemporalKernel, " then a pool of ",
           kPoolKernel, "), got ", times);
  return (times - (kTemporalKernel - 1) - kPoolKernel) / kPoolStride + 1;
}

std::shared_ptr<nn::Sequential> make_tsconv_features(int64_t channels) {
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<TsconvPatchEmbedding>(channels), std::make_shared<nn::Flatten>(1)});
}

TsconvEncoder::TsconvEncoder(EegShape shape, int64_t proj_dim, double proj_dropout)
    : EegEncoder("TSConv"), shape_(shape), proj_dim_(proj_dim) {
  check_eeg_shape(shape, "TSConv");
  SH_CHECK(proj_dim > 0, "TSConv: proj_dim must be positive, got ", proj_dim);
  const int64_t features =
      TsconvPatchEmbedding::kFilters * TsconvPatchEmbedding::positions(shape.times, "TSConv");
  enc_eeg_ = register_module("enc_eeg", make_tsconv_features(shape.channels));
  proj_eeg_ = register_module("proj_eeg", make_projection_head(features, proj_dim, proj_dropout));
}

Tensor TsconvEncoder::forward(const Tensor& x) {
  check_eeg_input(x, shape_, "TSConv");
  return proj_eeg_->forward(enc_eeg_->forward(x));
}

}  // namespace shallow::models
