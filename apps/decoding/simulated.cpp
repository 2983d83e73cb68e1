// The simulated data set: see simulated.h for the description, part by part.
#include "apps/decoding/simulated.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "apps/decoding/evaluate.h"
#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/indexing.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "weights_import/numpy.h"

namespace shallow::decoding {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr double kPi = 3.14159265358979323846;

// SplitMix64: a small generator whose numbers are the same on every platform (the standard
// library's distributions are not), for the per-concept and per-image draws.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal() {
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * kPi * u2);
  }
  int64_t below(int64_t n) { return int64_t(next() % uint64_t(n)); }

 private:
  uint64_t state_;
};

// Each part's own seed, so that the parts' draws never depend on one another.
enum Part { kImages = 1, kBackbone = 2, kReadout = 4, kSpaceTime = 5, kNoise = 6 };
uint64_t part_seed(uint64_t seed, Part part) { return Rng(seed * 0x100000001B3ULL + uint64_t(part)).next(); }

// ---- 1. images

struct Rgb {
  double r, g, b;
};

Rgb hsv(double h, double s, double v) {
  h -= std::floor(h);
  const int i = int(h * 6.0) % 6;
  const double f = h * 6.0 - std::floor(h * 6.0);
  const double p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  switch (i) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}

enum class Shape { disk, square, ring, cross };

struct Concept {
  double hue1, hue2, hue_shape, orientation, frequency, contrast, size, texture;
  Shape shape;
};

Concept draw_concept(Rng& rng) {
  Concept c;
  c.hue1 = rng.uniform();
  c.hue2 = rng.uniform();
  c.orientation = rng.uniform() * kPi;
  c.frequency = std::exp(rng.uniform(std::log(1.5), std::log(8.0)));
  c.shape = Shape(rng.below(4));
  c.size = rng.uniform(0.18, 0.35);
  c.hue_shape = rng.uniform();
  c.contrast = rng.uniform(0.3, 1.0);
  c.texture = rng.uniform(0.0, 0.3);
  return c;
}

bool inside(Shape shape, double dx, double dy, double size) {
  switch (shape) {
    case Shape::disk: return dx * dx + dy * dy < size * size;
    case Shape::square: return std::abs(dx) < 0.8 * size && std::abs(dy) < 0.8 * size;
    case Shape::ring: return std::abs(dx * dx + dy * dy - 0.64 * size * size) < 0.3 * size * size;
    case Shape::cross:
      return (std::abs(dx) < 0.25 * size && std::abs(dy) < size) || (std::abs(dy) < 0.25 * size && std::abs(dx) < size);
  }
  return false;
}

// One image of a concept into out[3][S][S], values in [0, 1].
void draw_image(const Concept& c, Rng& rng, int64_t S, float* out) {
  const double theta = c.orientation + 0.15 * rng.normal();
  const double freq = c.frequency * std::exp(0.1 * rng.normal());
  const double phase = rng.uniform(0.0, 2.0 * kPi);
  const Rgb c1 = hsv(c.hue1 + 0.03 * rng.normal(), 0.8, 0.9);
  const Rgb c2 = hsv(c.hue2 + 0.03 * rng.normal(), 0.6, 0.4);
  const double cx = rng.uniform(0.3, 0.7), cy = rng.uniform(0.3, 0.7);
  const double size = c.size * std::exp(0.1 * rng.normal());
  const Rgb c3 = hsv(c.hue_shape + 0.03 * rng.normal(), 0.9, 1.0);
  // A blocky color texture on an 8 x 8 grid.
  constexpr int kCells = 8;
  double texture[kCells][kCells][3];
  for (auto& row : texture)
    for (auto& cell : row)
      for (double& v : cell) v = 0.3 * c.texture * rng.normal();
  const double ct = std::cos(theta), st = std::sin(theta);
  for (int64_t i = 0; i < S; ++i) {
    for (int64_t j = 0; j < S; ++j) {
      const double y = (double(i) + 0.5) / double(S), x = (double(j) + 0.5) / double(S);
      const double g = 0.5 + 0.5 * c.contrast * std::sin(2.0 * kPi * freq * (x * ct + y * st) + phase);
      Rgb px{g * c1.r + (1 - g) * c2.r, g * c1.g + (1 - g) * c2.g, g * c1.b + (1 - g) * c2.b};
      if (inside(c.shape, x - cx, y - cy, size)) px = c3;
      const double* t = texture[std::min<int64_t>(kCells - 1, i * kCells / S)][std::min<int64_t>(kCells - 1, j * kCells / S)];
      const double v[3] = {px.r + t[0], px.g + t[1], px.b + t[2]};
      for (int ch = 0; ch < 3; ++ch) out[(ch * S + i) * S + j] = float(std::clamp(v[ch], 0.0, 1.0));
    }
  }
}

// ---- 4. read-out

// Columns z-scored over the rows ([n, d] float32), in double.
Tensor zscore_columns(const Tensor& x) {
  const Tensor d = x.to(DType::f64);
  const Tensor m = mean(d, {0}, true);
  const Tensor s = add(sqrt(var(d, {0}, 0, true)), 1e-6);
  return div(sub(d, m), s).to(DType::f32);
}

// features [n, d] -> sources [n, k]: a fixed random projection, each source z-scored.
Tensor read_out(const Tensor& features, int64_t sources, Generator& gen) {
  const int64_t d = features.size(1);
  const Tensor weights = mul(randn({d, sources}, DType::f32, &gen), 1.0 / std::sqrt(double(d)));
  return zscore_columns(matmul(zscore_columns(features), weights));
}

// ---- 5. space and time

struct Point {
  double x, y;
};

// Channels spread evenly over a unit disk (a sunflower: golden-angle turns, radius sqrt).
std::vector<Point> channel_positions(int64_t C) {
  std::vector<Point> p;
  const double golden = kPi * (3.0 - std::sqrt(5.0));
  for (int64_t c = 0; c < C; ++c) {
    const double r = std::sqrt((double(c) + 0.5) / double(C)), a = double(c) * golden;
    p.push_back({r * std::cos(a), r * std::sin(a)});
  }
  return p;
}

std::vector<double> spatial_pattern(const std::vector<Point>& channels, Rng& rng) {
  std::vector<double> pattern(channels.size(), 0.0);
  for (int blob = 0; blob < 2; ++blob) {
    const double r = std::sqrt(rng.uniform()), a = 2.0 * kPi * rng.uniform();
    const Point centre{r * std::cos(a), r * std::sin(a)};
    const double sign = rng.uniform() < 0.5 ? -1.0 : 1.0;
    for (size_t c = 0; c < channels.size(); ++c) {
      const double dx = channels[c].x - centre.x, dy = channels[c].y - centre.y;
      pattern[c] += sign * std::exp(-(dx * dx + dy * dy) / (2.0 * 0.35 * 0.35));
    }
  }
  for (double& v : pattern) v += 0.3 * rng.normal();
  return pattern;
}

std::vector<double> waveform(const SimulationConfig& cfg, double latency, double width, double frequency) {
  std::vector<double> w;
  for (int64_t i = 0; i < cfg.times; ++i) {
    const double t = cfg.start + double(i) / cfg.rate - latency;
    w.push_back(std::exp(-0.5 * (t / width) * (t / width)) * std::cos(2.0 * kPi * frequency * t));
  }
  return w;
}

// Sources' spatio-temporal maps [k, C * T]: source k's pattern times its waveform.
Tensor source_maps(const SimulationConfig& cfg, const std::vector<Point>& channels, int64_t k, double latency_lo,
                   double latency_hi, double width_lo, double width_hi, Rng& rng) {
  const int64_t C = cfg.channels, T = cfg.times;
  Tensor maps = Tensor::empty({k, C * T});
  float* p = maps.data<float>();
  for (int64_t s = 0; s < k; ++s) {
    const std::vector<double> pattern = spatial_pattern(channels, rng);
    const double latency = rng.uniform(latency_lo, latency_hi), width = rng.uniform(width_lo, width_hi);
    const std::vector<double> wave = waveform(cfg, latency, width, rng.uniform(3.0, 8.0));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < T; ++t) p[(s * C + c) * T + t] = float(pattern[size_t(c)] * wave[size_t(t)]);
  }
  return maps;
}

// The response every image evokes alike: a positive component at 100 ms and a negative one at
// 170 ms, each with its own topography. [C, T]
Tensor common_response(const SimulationConfig& cfg, const std::vector<Point>& channels, Rng& rng) {
  const int64_t C = cfg.channels, T = cfg.times;
  Tensor erp = Tensor::zeros({C, T});
  float* p = erp.data<float>();
  const double latencies[2] = {0.10, 0.17}, signs[2] = {1.0, -1.0};
  for (int k = 0; k < 2; ++k) {
    const std::vector<double> pattern = spatial_pattern(channels, rng);
    for (int64_t t = 0; t < T; ++t) {
      const double dt = cfg.start + double(t) / cfg.rate - latencies[k];
      const double w = signs[k] * cfg.erp * std::exp(-0.5 * (dt / 0.025) * (dt / 0.025));
      for (int64_t c = 0; c < C; ++c) p[c * T + t] += float(pattern[size_t(c)] * w);
    }
  }
  return erp;
}

// ---- 6. noise

// The lower Cholesky factor of the channels' noise covariance, exp(-d / 0.7) + 0.1 I, scaled
// to unit variance per channel. [C, C]
Tensor noise_mixing(const std::vector<Point>& channels) {
  const size_t C = channels.size();
  std::vector<double> a(C * C);
  for (size_t i = 0; i < C; ++i)
    for (size_t j = 0; j < C; ++j) {
      const double d = std::hypot(channels[i].x - channels[j].x, channels[i].y - channels[j].y);
      a[i * C + j] = (std::exp(-d / 0.7) + (i == j ? 0.1 : 0.0)) / 1.1;
    }
  std::vector<float> l(C * C, 0.0f);
  std::vector<double> ld(C * C, 0.0);
  for (size_t j = 0; j < C; ++j) {
    double s = a[j * C + j];
    for (size_t k = 0; k < j; ++k) s -= ld[j * C + k] * ld[j * C + k];
    ld[j * C + j] = std::sqrt(s);
    for (size_t i = j + 1; i < C; ++i) {
      double v = a[i * C + j];
      for (size_t k = 0; k < j; ++k) v -= ld[i * C + k] * ld[j * C + k];
      ld[i * C + j] = v / ld[j * C + j];
    }
  }
  for (size_t i = 0; i < C * C; ++i) l[i] = float(ld[i]);
  return Tensor::from_vector(l, {int64_t(C), int64_t(C)});
}

// signal [n, C * T] + noise for each of `reps` repetitions -> [n, reps, C, T].
Tensor add_noise(const SimulationConfig& cfg, const Tensor& signal, int64_t reps, const Tensor& mixing,
                 Generator& gen) {
  const int64_t n = signal.size(0), C = cfg.channels, T = cfg.times;
  Tensor noise = matmul(mixing, randn({n * reps, C, T}, DType::f32, &gen)).contiguous();  // across channels
  float* p = noise.data<float>();
  const double rho = 0.5, innovation = std::sqrt(1.0 - rho * rho);
  for (int64_t row = 0; row < n * reps * C; ++row) {  // over time: AR(1) of unit variance
    float* x = p + row * T;
    for (int64_t t = 1; t < T; ++t) x[t] = float(rho * x[t - 1] + innovation * x[t]);
  }
  const Tensor data = add(signal.view({n, 1, C, T}), mul(noise.view({n, reps, C, T}), cfg.noise));
  return data.contiguous();
}

EegRecording recording(const SimulationConfig& cfg, Tensor data, const std::string& name) {
  EegRecording r;
  r.path = name;
  r.data = std::move(data);
  for (int64_t c = 0; c < cfg.channels; ++c) r.ch_names.push_back("ch" + std::to_string(c + 1));
  for (int64_t t = 0; t < cfg.times; ++t) r.times.push_back(cfg.start + double(t) / cfg.rate);
  r.simulated = true;
  return r;
}

}  // namespace

json SimulationConfig::to_json() const {
  return {{"seed", seed},
          {"images", {{"train_concepts", train_concepts}, {"images_per_concept", images_per_concept},
                      {"test_concepts", test_concepts}}},
          {"vit", {{"image_size", image_size}, {"patch", patch}, {"width", width}, {"blocks", blocks},
                   {"heads", heads}, {"mlp", mlp}, {"proj_dim", proj_dim}, {"block_scale", block_scale}}},
          {"planted_layer", planted_layer},
          {"sources", sources},
          {"final_share", final_share},
          {"channels", channels},
          {"times", times},
          {"rate", rate},
          {"start", start},
          {"erp", erp},
          {"noise", noise},
          {"train_repetitions", train_repetitions},
          {"test_repetitions", test_repetitions}};
}

void SimulationConfig::validate() const {
  SH_CHECK(train_concepts > 0 && images_per_concept > 0 && test_concepts >= 2, "simulation: needs training "
           "concepts, images per concept and at least 2 test concepts, got ", train_concepts, ", ",
           images_per_concept, ", ", test_concepts);
  SH_CHECK(train_images() >= 2, "simulation: needs at least 2 training images");
  SH_CHECK(sources > 0 && channels > 0 && times > 0 && rate > 0, "simulation: sources, channels, times and "
           "rate must be positive");
  SH_CHECK(noise >= 0 && final_share >= 0 && erp >= 0, "simulation: noise, final_share and erp must not be negative");
  SH_CHECK(train_repetitions > 0 && test_repetitions > 0, "simulation: repetitions must be positive");
  SH_CHECK(planted_layer >= 0, "simulation: the planted layer must be a numbered layer, got ", planted_layer);
}

SimulatedImages make_images(const SimulationConfig& cfg, int64_t size) {
  cfg.validate();
  SH_CHECK(size >= 8, "simulation: images of ", size, " pixels are too small");
  Rng rng(part_seed(cfg.seed, kImages));
  std::vector<Concept> concepts;
  for (int64_t i = 0; i < cfg.train_concepts + cfg.test_concepts; ++i) concepts.push_back(draw_concept(rng));
  SimulatedImages out;
  out.train = Tensor::empty({cfg.train_images(), 3, size, size});
  out.test = Tensor::empty({cfg.test_concepts, 3, size, size});
  const int64_t plane = 3 * size * size;
  for (int64_t c = 0; c < cfg.train_concepts; ++c)
    for (int64_t k = 0; k < cfg.images_per_concept; ++k) {
      draw_image(concepts[size_t(c)], rng, size, out.train.data<float>() + (c * cfg.images_per_concept + k) * plane);
      out.train_concept.push_back(c);
    }
  for (int64_t c = 0; c < cfg.test_concepts; ++c)
    draw_image(concepts[size_t(cfg.train_concepts + c)], rng, size, out.test.data<float>() + c * plane);
  return out;
}

std::shared_ptr<models::VisionTransformer> make_random_vit(const SimulationConfig& cfg) {
  models::VitConfig v;
  v.image_size = cfg.image_size;
  v.patch_size = cfg.patch;
  v.width = cfg.width;
  v.depth = cfg.blocks;
  v.heads = cfg.heads;
  v.mlp_dim = cfg.mlp;
  v.act = models::Activation::gelu;
  v.patch_bias = true;
  v.proj_dim = cfg.proj_dim;
  v.validate();
  SH_CHECK(cfg.planted_layer <= cfg.blocks, "simulation: the planted layer ", cfg.planted_layer,
           " is deeper than the ViT's ", cfg.blocks, " blocks");
  Generator gen(part_seed(cfg.seed, kBackbone));
  manual_seed(part_seed(cfg.seed, kBackbone));  // the modules' own initialization draws
  auto vit = std::make_shared<models::VisionTransformer>(v);
  NoGrad no_grad;
  nn::init::normal_(vit->cls_token, 0.0, 0.02, &gen);
  nn::init::normal_(vit->pos_embed, 0.0, 0.02, &gen);
  for (auto& [name, p] : vit->named_parameters()) {
    const bool block_matrix = name.rfind("blocks.", 0) == 0 && p.dim() == 2;  // q, k, v, out, fc1, fc2
    if (block_matrix) p.copy_(mul(p.detach(), cfg.block_scale));
  }
  vit->eval();
  return vit;
}

models::LayerOutputs extract_layers(models::Backbone& backbone, const Tensor& images,
                                    const std::vector<int64_t>& layers, models::Pooling pooling, int64_t batch) {
  const PreprocessConfig& pre = backbone.preprocess();
  const Tensor m = Tensor::from_vector(std::vector<float>(pre.mean.begin(), pre.mean.end()), {1, 3, 1, 1});
  const Tensor s = Tensor::from_vector(std::vector<float>(pre.std.begin(), pre.std.end()), {1, 3, 1, 1});
  std::map<int64_t, std::vector<Tensor>> parts;
  NoGrad no_grad;
  for (int64_t start = 0; start < images.size(0); start += batch) {
    const Tensor x = div(sub(images.slice(0, start, std::min(images.size(0), start + batch)), m), s).contiguous();
    backbone.extract(x, layers, pooling, [&](int64_t layer, const Tensor& value) { parts[layer].push_back(value); });
  }
  models::LayerOutputs out;
  for (auto& [layer, list] : parts) out[layer] = concat(list, 0).contiguous();
  return out;
}

SimulatedEeg simulate_eeg(const SimulationConfig& cfg, const Tensor& planted_train, const Tensor& planted_test,
                          const Tensor& final_train, const Tensor& final_test) {
  cfg.validate();
  const int64_t n_train = planted_train.size(0), n_test = planted_test.size(0);
  SH_CHECK(final_train.size(0) == n_train && final_test.size(0) == n_test, "simulation: feature rows disagree");
  // 4. read-out, z-scored over every image (training and test together).
  Generator readout_gen(part_seed(cfg.seed, kReadout));
  const Tensor planted = read_out(concat({planted_train, planted_test}, 0), cfg.sources, readout_gen);
  const Tensor final = read_out(concat({final_train, final_test}, 0), cfg.sources, readout_gen);
  // 5. space and time.
  Rng rng(part_seed(cfg.seed, kSpaceTime));
  const std::vector<Point> channels = channel_positions(cfg.channels);
  const Tensor planted_maps = source_maps(cfg, channels, cfg.sources, 0.08, 0.20, 0.02, 0.05, rng);
  const Tensor final_maps = source_maps(cfg, channels, cfg.sources, 0.20, 0.40, 0.03, 0.06, rng);
  const Tensor erp = common_response(cfg, channels, rng);
  Tensor signal = add(matmul(planted, planted_maps), mul(matmul(final, final_maps), cfg.final_share));
  const double scale = std::sqrt(var(signal.to(DType::f64), {}, 0).item());
  signal = add(div(signal, scale > 0 ? scale : 1.0), erp.view({1, cfg.channels * cfg.times}));
  // 6. noise, independent for every repetition.
  Generator noise_gen(part_seed(cfg.seed, kNoise));
  const Tensor mixing = noise_mixing(channels);
  SimulatedEeg out;
  out.train = recording(cfg, add_noise(cfg, signal.slice(0, 0, n_train), cfg.train_repetitions, mixing, noise_gen),
                        "simulated training EEG");
  out.test = recording(cfg, add_noise(cfg, signal.slice(0, n_train, n_train + n_test), cfg.test_repetitions, mixing,
                                      noise_gen),
                       "simulated test EEG");
  return out;
}

SimulatedSet simulate(const SimulationConfig& cfg, const std::vector<int64_t>& layers, models::Backbone* backbone) {
  cfg.validate();
  SimulatedSet set;
  set.config = cfg;
  std::unique_ptr<models::Backbone> own;
  if (!backbone) {
    own = models::make_backbone(make_random_vit(cfg), models::BackboneFamily::clip);
    backbone = own.get();
  }
  set.backbone = backbone->describe();
  set.layers = backbone->layers();
  std::vector<int64_t> wanted = layers;
  for (int64_t l : {cfg.planted_layer, models::kFinalLayer})
    if (std::find(wanted.begin(), wanted.end(), l) == wanted.end()) wanted.push_back(l);
  backbone->check_layers(wanted);
  set.images = make_images(cfg, backbone->input_size());
  const models::LayerOutputs train = extract_layers(*backbone, set.images.train, wanted, models::Pooling::mean);
  const models::LayerOutputs test = extract_layers(*backbone, set.images.test, wanted, models::Pooling::mean);
  set.eeg = simulate_eeg(cfg, train.at(cfg.planted_layer), test.at(cfg.planted_layer), train.at(models::kFinalLayer),
                         test.at(models::kFinalLayer));
  for (int64_t l : layers) {
    set.train_features[l] = train.at(l);
    set.test_features[l] = test.at(l);
  }
  return set;
}

std::pair<std::string, std::string> write_simulated_set(const SimulatedSet& set, const std::string& dir,
                                                        bool eeg_files) {
  const fs::path eeg_dir = fs::path(dir) / "eeg";
  std::string train, test;
  if (eeg_files) {
    fs::create_directories(eeg_dir);
    train = (eeg_dir / "preprocessed_eeg_training.npy").string();
    test = (eeg_dir / "preprocessed_eeg_test.npy").string();
    // The description first: a reader that finds the EEG files finds them marked as simulated.
    json description = set.config.to_json();
    description["backbone"] = set.backbone;
    description["note"] = "simulated EEG (see docs/SIMULATED_DATA.md); not recorded data";
    write_json_file((eeg_dir / "simulated.json").string(), description);
    write_npy(train, set.eeg.train.data);
    write_npy(test, set.eeg.test.data);
  }
  for (const char* split : {"train", "test"}) {
    const fs::path features_dir = fs::path(dir) / "features" / split;
    fs::create_directories(features_dir);
    const models::LayerOutputs& features = std::string(split) == "train" ? set.train_features : set.test_features;
    for (auto& [layer, x] : features)
      write_npy((features_dir / ("layer_" + models::layer_name(layer) + ".npy")).string(), x);
  }
  return {train, test};
}

}  // namespace shallow::decoding
