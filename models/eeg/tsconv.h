#pragma once
// NICE's TSConv encoder (Song et al., "Decoding natural images from EEG for object
// recognition", ICLR 2024), layer for layer as its published PyTorch code, on x [N, C, T]:
//
//   enc_eeg.0  PatchEmbedding, on x.unsqueeze(1) = [N, 1, C, T]
//     tsconv.0      Conv2d(1, 40, (1, 25), stride 1)         temporal filters
//     tsconv.1      AvgPool2d((1, 51), (1, 5))
//     tsconv.2      BatchNorm2d(40)
//     tsconv.3      ELU
//     tsconv.4      Conv2d(40, 40, (C, 1), stride 1)          spatial filters over all channels
//     tsconv.5      BatchNorm2d(40)
//     tsconv.6      ELU
//     tsconv.7      Dropout(0.5)
//     projection.0  Conv2d(40, 40, (1, 1))
//     projection.1  Rearrange('b e (h) (w) -> b (h w) e')    [N, positions, 40]
//   enc_eeg.1  FlattenHead: view(N, -1), so features are ordered position-major
//   proj_eeg   Linear(40 * positions, proj_dim) -> x + Dropout(0.5)(Linear(GELU(x))) -> LayerNorm
//
// positions = ((T - 24) - 51) / 5 + 1 (36 at T = 250, so 1440 features; 6 at T = 100), and T
// must be at least 75. NICE's proj_dim is 768. ATM-S (atms.h) reuses enc_eeg and proj_eeg.
#include <memory>

#include "engine/nn/container.h"
#include "models/eeg/encoder.h"

namespace shallow::models {

// The temporal-spatial convolutions and the 1x1 projection: [N, C, T] -> [N, positions, 40].
class TsconvPatchEmbedding : public nn::Module {
 public:
  static constexpr int64_t kFilters = 40;
  explicit TsconvPatchEmbedding(int64_t channels, double dropout = 0.5);
  Tensor forward(const Tensor& x) override;

  // Positions left after the temporal convolution and pooling; throws (naming `encoder`) when
  // `times` is too short for them.
  static int64_t positions(int64_t times, const char* encoder);

 private:
  std::shared_ptr<nn::Sequential> tsconv_, projection_;
};

// NICE's Enc_eeg: the patch embedding then the flattening, [N, C, T] -> [N, 40 * positions].
std::shared_ptr<nn::Sequential> make_tsconv_features(int64_t channels);

class TsconvEncoder : public EegEncoder {
 public:
  static constexpr int64_t kDefaultEmbedDim = 768;
  explicit TsconvEncoder(EegShape shape, int64_t proj_dim = kDefaultEmbedDim,
                         double proj_dropout = 0.5);
  Tensor forward(const Tensor& x) override;
  int64_t embed_dim() const override { return proj_dim_; }

 private:
  EegShape shape_;
  int64_t proj_dim_;
  std::shared_ptr<nn::Sequential> enc_eeg_, proj_eeg_;
};

}  // namespace shallow::models
