#pragma once
// The built-in simulated data set: images, a vision backbone, and EEG whose image-specific part
// is planted in ONE layer of that backbone, so that a layer sweep has a known right answer.
// docs/SIMULATED_DATA.md describes it for readers; this is the same description, part by part.
// Every part draws from its own generator, seeded from SimulationConfig::seed and the part's
// number, so changing one part leaves the others' numbers alone.
//
// 1. Images (part 1). Concepts, like THINGS' (training concepts with several images each; test
//    concepts, unseen in training, with one image each). Each concept draws a prototype:
//    two grating hues, an orientation, a spatial frequency (1.5 to 8 cycles per image, log-
//    uniform), a grating contrast, a shape (disk, square, ring or cross), its size and hue, and
//    a texture strength. Each image of the concept jitters the hues (sd 0.03), the orientation
//    (sd 0.15 rad), the frequency (x exp(N(0, 0.1))) and the size, draws the grating's phase
//    and the shape's position, and adds a blocky color texture. So images share low-level
//    structure (texture, orientation, color, spatial frequency) and category structure.
// 2. Backbone (part 2). A small random ViT (image 32, patch 8, width 192, 8 blocks, 3 heads,
//    MLP 768, GELU, a 128-wide projection), PyTorch's default initialization, class token and
//    position embedding N(0, 0.02), and every block's weight matrices (q, k, v, out, fc1, fc2)
//    multiplied by block_scale (4). At the default scale a random ViT's residual stream hardly
//    changes from block to block, so every layer would decode alike; scaled up, each block
//    transforms it, and depth matters (measured: DESIGN.md, and docs/SIMULATED_DATA.md). Any
//    backbone can stand in (real weights through `--weights`).
// 3. Features. Each image's layers pooled as `shallow extract --pool mean` pools them (mean of
//    the patch tokens); the final layer is the model's own embedding.
// 4. Read-out (part 4). The planted layer's features, z-scored over all images, read out by a
//    fixed random matrix [dim, sources] / sqrt(dim), each source z-scored: `sources` numbers per
//    image. The final embedding is read out the same way into as many sources of its own.
// 5. Space and time (part 5). Channels sit on a disk (a sunflower layout). Each source has a
//    spatial pattern (two Gaussian blobs of random sign and position, width 0.35, plus 0.3
//    N(0, 1) per channel) and a waveform: a Gaussian envelope at a latency, times a cosine
//    (3 to 8 Hz). Planted sources peak at 80 to 200 ms (width 20 to 50 ms); final-layer sources
//    at 200 to 400 ms (width 30 to 60 ms) with amplitude final_share. An evoked response common
//    to every image (two components at 100 and 170 ms, amplitude erp) is added. The whole
//    signal is scaled to unit standard deviation before the common response is added.
// 6. Noise (part 6). Independent for every repetition: Gaussian, correlated across channels by
//    distance (covariance exp(-d / 0.7) + 0.1 I, unit variance) and over time (AR(1), 0.5,
//    unit variance), times `noise`. Training images get 4 repetitions, test images 80, as in
//    THINGS-EEG2; averaging them, as the protocol does, divides the noise by 2 and by ~9.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/decoding/things_eeg.h"
#include "models/backbone.h"
#include "models/vit.h"

namespace shallow::decoding {

struct SimulationConfig {
  uint64_t seed = 2026;
  // 1. images
  int64_t train_concepts = 400, images_per_concept = 4, test_concepts = 200;
  // 2. the random ViT (ignored when a backbone is given)
  int64_t image_size = 32, patch = 8, width = 192, blocks = 8, heads = 3, mlp = 768, proj_dim = 128;
  double block_scale = 4.0;
  // 4. read-out
  int64_t planted_layer = 3;
  int64_t sources = 16;
  double final_share = 0.4;
  // 5. space and time
  int64_t channels = 17, times = 100;
  double rate = 100.0, start = -0.2;  // Hz, and the time of the first sample in seconds
  double erp = 1.0;
  // 6. noise
  double noise = 10.0;
  int64_t train_repetitions = 4, test_repetitions = 80;

  int64_t train_images() const { return train_concepts * images_per_concept; }
  nlohmann::json to_json() const;
  void validate() const;  // throws naming the first bad field
};

// Part 1: images [n, 3, size, size] with values in [0, 1]; training images are concept-major
// (images_per_concept of concept 0, then of concept 1, ...), test images one per concept.
struct SimulatedImages {
  Tensor train, test;
  std::vector<int64_t> train_concept;  // the concept of each training image
};
SimulatedImages make_images(const SimulationConfig& config, int64_t size);

// Part 2: the random ViT, its blocks scaled.
std::shared_ptr<models::VisionTransformer> make_random_vit(const SimulationConfig& config);

// Part 3: the layers of the backbone for images in [0, 1] (normalized with the backbone's mean
// and std here), pooled by `pooling`, in batches; layer -> [n, dim] float32.
models::LayerOutputs extract_layers(models::Backbone& backbone, const Tensor& images,
                                    const std::vector<int64_t>& layers, models::Pooling pooling,
                                    int64_t batch = 200);

// Parts 4 to 6: EEG from the planted layer's and the final layer's features of the training
// images and the test images ([n, dim] each).
struct SimulatedEeg {
  EegRecording train, test;  // [images, repetitions, channels, times]
};
SimulatedEeg simulate_eeg(const SimulationConfig& config, const Tensor& planted_train, const Tensor& planted_test,
                          const Tensor& final_train, const Tensor& final_test);

// The whole set: images, backbone (the random ViT unless one is given), the features of
// `layers` (the planted layer and the final one are always computed), and the EEG.
struct SimulatedSet {
  SimulationConfig config;
  SimulatedImages images;
  models::LayerOutputs train_features, test_features;  // of the requested layers
  SimulatedEeg eeg;
  std::vector<int64_t> layers;                         // every layer the backbone has
  std::string backbone;                                // its description
};
SimulatedSet simulate(const SimulationConfig& config, const std::vector<int64_t>& layers,
                      models::Backbone* backbone = nullptr);

// Writes the set as files the rest of the pipeline reads:
//   dir/eeg/preprocessed_eeg_{training,test}.npy   float32 [images, repetitions, channels, times]
//   dir/eeg/simulated.json                          the configuration (marks the data as simulated)
//   dir/features/{train,test}/layer_<l>.npy         float32 [images, dim]
// Without eeg_files only the features are written. Returns the paths of the two EEG files.
std::pair<std::string, std::string> write_simulated_set(const SimulatedSet& set, const std::string& dir,
                                                        bool eeg_files = true);

}  // namespace shallow::decoding
