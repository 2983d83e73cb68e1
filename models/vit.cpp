#include "models/vit.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops/attention.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/indexing.h"
#include "engine/ops/linalg.h"
#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"

namespace shallow::models {

// ---------------------------------------------------------------- names and presets

const char* activation_name(Activation act) {
  return act == Activation::quick_gelu ? "quick_gelu" : "gelu";
}

Activation parse_activation(const std::string& name) {
  if (name == "gelu") return Activation::gelu;
  if (name == "quick_gelu") return Activation::quick_gelu;
  throw Error("unknown activation '" + name + "': expected gelu or quick_gelu");
}

const char* pos_interpolation_name(PosInterpolation p) {
  switch (p) {
    case PosInterpolation::none: return "none";
    case PosInterpolation::bicubic: return "bicubic";
    case PosInterpolation::bicubic_antialias: return "bicubic (antialiased)";
    case PosInterpolation::bicubic_scale_offset: return "bicubic (scale factor + 0.1)";
  }
  return "?";
}

void VitConfig::validate() const {
  SH_CHECK(patch_size > 0 && image_size >= patch_size, "ViT config: image size ", image_size,
           " and patch size ", patch_size, " (need 0 < patch <= image)");
  SH_CHECK(width > 0 && heads > 0 && width % heads == 0, "ViT config: width ", width,
           " is not divisible by ", heads, " heads");
  SH_CHECK(depth >= 0 && mlp_dim > 0, "ViT config: depth ", depth, ", mlp dim ", mlp_dim);
  SH_CHECK(register_tokens >= 0 && proj_dim >= 0 && pos_grid >= 0, "ViT config: negative size");
  SH_CHECK(class_token || final_pool == FinalPool::patch_mean,
           "ViT config: without a class token the final embedding must pool the patch tokens");
  SH_CHECK(pos_interpolation != PosInterpolation::none || stored_grid() == grid(),
           "ViT config: stored position grid ", stored_grid(), " x ", stored_grid(),
           " but the input grid is ", grid(), " x ", grid(), " and no interpolation is set");
}

std::string VitConfig::describe() const {
  std::ostringstream s;
  s << "ViT: width " << width << ", " << depth << " blocks, " << heads << " heads, patch "
    << patch_size << ", input " << image_size << " px, mlp " << mlp_dim << ", "
    << activation_name(act);
  if (pre_norm) s << ", pre-norm";
  if (register_tokens) s << ", " << register_tokens << " registers";
  if (layer_scale) s << ", layer scale";
  if (proj_dim) s << ", projection to " << proj_dim;
  if (stored_grid() != grid())
    s << ", position grid " << stored_grid() << " resized " << pos_interpolation_name(pos_interpolation);
  return s.str();
}

namespace {

VitConfig clip_shape(int64_t patch, int64_t width, int64_t depth, int64_t heads, int64_t proj,
                     Activation act) {
  VitConfig c;
  c.patch_size = patch, c.width = width, c.depth = depth, c.heads = heads;
  c.mlp_dim = 4 * width, c.proj_dim = proj, c.act = act, c.pre_norm = true;
  return c;
}

VitConfig dinov2_shape(int64_t width, int64_t depth, int64_t heads, int64_t registers) {
  VitConfig c;
  c.patch_size = 14, c.pos_grid = 37;  // trained at 518 px, run at 224 by default
  c.width = width, c.depth = depth, c.heads = heads, c.mlp_dim = 4 * width;
  c.register_tokens = registers, c.layer_scale = true, c.ln_eps = 1e-6, c.patch_bias = true;
  c.pos_interpolation =
      registers ? PosInterpolation::bicubic_antialias : PosInterpolation::bicubic;
  return c;
}

}  // namespace

VitConfig VitConfig::clip_b32() { return clip_shape(32, 768, 12, 12, 512, Activation::quick_gelu); }
VitConfig VitConfig::clip_b16() { return clip_shape(16, 768, 12, 12, 512, Activation::quick_gelu); }
VitConfig VitConfig::clip_l14() { return clip_shape(14, 1024, 24, 16, 768, Activation::quick_gelu); }
VitConfig VitConfig::clip_h14() { return clip_shape(14, 1280, 32, 16, 1024, Activation::gelu); }
VitConfig VitConfig::clip_bigg14() {
  VitConfig c = clip_shape(14, 1664, 48, 16, 1280, Activation::gelu);
  c.mlp_dim = 8192;
  return c;
}
VitConfig VitConfig::dinov2_s14(int64_t registers) { return dinov2_shape(384, 12, 6, registers); }
VitConfig VitConfig::dinov2_b14(int64_t registers) { return dinov2_shape(768, 12, 12, registers); }
VitConfig VitConfig::dinov2_l14(int64_t registers) { return dinov2_shape(1024, 24, 16, registers); }

// ---------------------------------------------------------------- position grid resizing

namespace {

// Keys' cubic convolution kernel, for |x| <= 1 and 1 < |x| < 2.
double cubic_near(double x, double a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }
double cubic_far(double x, double a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }

// One output position's taps along an axis: input indices and their weights.
struct Taps {
  std::vector<int64_t> index;
  std::vector<double> weight;
};

// PyTorch's plain bicubic (upsample_bicubic2d, align_corners=False): four taps at
// floor(src) - 1 .. floor(src) + 2 clamped to the edge, with a = -0.75. `scale` is input/output
// for a size, 1/scale_factor for a scale factor.
std::vector<Taps> bicubic_taps(int64_t in, int64_t out, double scale) {
  auto taps = std::vector<Taps>(size_t(out));
  for (int64_t i = 0; i < out; ++i) {
    const double src = scale * (double(i) + 0.5) - 0.5;
    const int64_t base = std::min<int64_t>(int64_t(std::floor(src)), in - 1);
    const double t = std::clamp(src - double(base), 0.0, 1.0);
    constexpr double a = -0.75;
    const double w[4] = {cubic_far(t + 1, a), cubic_near(t, a), cubic_near(1 - t, a),
                         cubic_far(2 - t, a)};
    for (int k = 0; k < 4; ++k) {
      taps[size_t(i)].index.push_back(std::clamp<int64_t>(base - 1 + k, 0, in - 1));
      taps[size_t(i)].weight.push_back(w[k]);
    }
  }
  return taps;
}

// PyTorch's antialiased bicubic (_upsample_bicubic2d_aa): when shrinking, the kernel (a = -0.5)
// is stretched over `scale` input pixels; taps are those in the window, weights normalized.
std::vector<Taps> antialiased_taps(int64_t in, int64_t out) {
  const double scale = double(in) / double(out);
  const double support = scale >= 1.0 ? 2.0 * scale : 2.0;
  const double inv = scale >= 1.0 ? 1.0 / scale : 1.0;
  auto taps = std::vector<Taps>(size_t(out));
  for (int64_t i = 0; i < out; ++i) {
    const double center = scale * (double(i) + 0.5);
    const int64_t lo = std::max<int64_t>(int64_t(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(int64_t(center + support + 0.5), in);
    double total = 0;
    Taps& t = taps[size_t(i)];
    for (int64_t j = lo; j < hi; ++j) {
      const double x = std::abs((double(j) - center + 0.5) * inv);
      constexpr double a = -0.5;
      const double w = x < 1 ? cubic_near(x, a) : x < 2 ? cubic_far(x, a) : 0.0;
      t.index.push_back(j);
      t.weight.push_back(w);
      total += w;
    }
    if (total != 0)
      for (double& w : t.weight) w /= total;
  }
  return taps;
}

std::vector<Taps> taps_for(int64_t in, int64_t out, PosInterpolation how) {
  switch (how) {
    case PosInterpolation::bicubic: return bicubic_taps(in, out, double(in) / double(out));
    case PosInterpolation::bicubic_antialias: return antialiased_taps(in, out);
    case PosInterpolation::bicubic_scale_offset: {
      // DINOv2 asks for scale_factor = (out + 0.1) / in: F.interpolate takes the output size as
      // floor(in * factor) = out but maps coordinates with the factor itself. (DINOv2's code
      // pairs the factors with the axes in (width, height) order; for the square inputs it is
      // used with, that is the same.)
      const double factor = (double(out) + 0.1) / double(in);
      return bicubic_taps(in, out, 1.0 / factor);
    }
    case PosInterpolation::none: break;
  }
  throw Error("resize_position_grid: no interpolation configured");
}

}  // namespace

Tensor resize_position_grid(const Tensor& grid, int64_t oh, int64_t ow, PosInterpolation how) {
  SH_CHECK(grid.dim() == 3 && oh > 0 && ow > 0, "resize_position_grid: expected a grid [h, w, D] "
           "and a positive output size, got ", shape_str(grid.shape()), " -> ", oh, " x ", ow);
  const int64_t ih = grid.size(0), iw = grid.size(1), D = grid.size(2);
  const Tensor in = grid.detach().to(DType::f32).contiguous();
  const float* src = in.data<float>();
  const std::vector<Taps> cols = taps_for(iw, ow, how), rows = taps_for(ih, oh, how);

  // Horizontal pass, then vertical, accumulating in double.
  std::vector<double> wide(size_t(ih * ow * D), 0.0);
  for (int64_t y = 0; y < ih; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      double* dst = &wide[size_t((y * ow + x) * D)];
      const Taps& t = cols[size_t(x)];
      for (size_t k = 0; k < t.index.size(); ++k) {
        const float* s = src + (y * iw + t.index[k]) * D;
        for (int64_t d = 0; d < D; ++d) dst[d] += t.weight[k] * double(s[d]);
      }
    }
  Tensor out = Tensor::zeros({oh, ow, D}, DType::f32);
  float* o = out.data<float>();
  for (int64_t y = 0; y < oh; ++y) {
    const Taps& t = rows[size_t(y)];
    for (int64_t x = 0; x < ow; ++x) {
      float* dst = o + (y * ow + x) * D;
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0;
        for (size_t k = 0; k < t.index.size(); ++k)
          acc += t.weight[k] * wide[size_t((t.index[k] * ow + x) * D + d)];
        dst[d] = float(acc);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- the parts

VitAttention::VitAttention(int64_t width, int64_t heads, bool qkv_bias, DType dtype)
    : nn::Module("VitAttention"), heads_(heads) {
  q = register_module("q", std::make_shared<nn::Linear>(width, width, qkv_bias, dtype));
  k = register_module("k", std::make_shared<nn::Linear>(width, width, qkv_bias, dtype));
  v = register_module("v", std::make_shared<nn::Linear>(width, width, qkv_bias, dtype));
  out = register_module("out", std::make_shared<nn::Linear>(width, width, true, dtype));
}

Tensor VitAttention::forward(const Tensor& x) {
  const int64_t N = x.size(0), T = x.size(1), D = x.size(2), hd = D / heads_;
  // [N, T, D] -> [N, heads, T, hd]: a view whose rows stay contiguous, read in place by the op.
  auto heads = [&](const Tensor& y) { return y.view({N, T, heads_, hd}).transpose(1, 2); };
  const Tensor o = scaled_dot_product_attention(heads(q->forward(x)), heads(k->forward(x)),
                                                heads(v->forward(x)));
  return out->forward(o.transpose(1, 2).reshape({N, T, D}));
}

VitMlp::VitMlp(int64_t width, int64_t hidden, Activation act, DType dtype)
    : nn::Module("VitMlp"), act_(act) {
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(width, hidden, true, dtype));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, width, true, dtype));
}

Tensor VitMlp::forward(const Tensor& x) {
  // fc1 and its activation in one op: for inference the gemm applies both as it writes.
  const Tensor h = linear_act(x, fc1->weight, fc1->bias,
                              act_ == Activation::quick_gelu ? LinearAct::quick_gelu : LinearAct::gelu);
  return fc2->forward(h);
}

VitBlock::VitBlock(const VitConfig& c) : nn::Module("VitBlock") {
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(Shape{c.width}, c.ln_eps,
                                                                    true, true, c.dtype));
  attn = register_module("attn", std::make_shared<VitAttention>(c.width, c.heads, c.qkv_bias,
                                                                c.dtype));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(Shape{c.width}, c.ln_eps,
                                                                    true, true, c.dtype));
  mlp = register_module("mlp", std::make_shared<VitMlp>(c.width, c.mlp_dim, c.act, c.dtype));
  if (c.layer_scale) {
    ls1 = register_parameter("ls1", Tensor::ones({c.width}, c.dtype));
    ls2 = register_parameter("ls2", Tensor::ones({c.width}, c.dtype));
  }
}

Tensor VitBlock::run(Tensor x) {
  // Each residual branch is computed, scaled and added before the next starts, so that only one
  // branch's activations live at a time.
  Tensor h = attn->forward(norm1->forward(x));
  x = x + (ls1.defined() ? h * ls1 : h);
  h = mlp->forward(norm2->forward(x));
  return x + (ls2.defined() ? h * ls2 : h);
}

// ---------------------------------------------------------------- the model

VisionTransformer::VisionTransformer(const VitConfig& config)
    : nn::Module("VisionTransformer"), config_(config) {
  config_.validate();
  const VitConfig& c = config_;
  const int64_t D = c.width, P = c.patch_size;
  patch_embed = register_module(
      "patch_embed", std::make_shared<nn::Conv2d>(3, D, Int2{P, P},
                                                  nn::Conv2dOptions{.stride = {P, P},
                                                                    .bias = c.patch_bias,
                                                                    .dtype = c.dtype}));
  if (c.class_token) cls_token = register_parameter("cls_token", Tensor::zeros({D}, c.dtype));
  if (c.register_tokens > 0)
    reg_tokens = register_parameter("reg_tokens", Tensor::zeros({c.register_tokens, D}, c.dtype));
  const int64_t positions = (c.class_token ? 1 : 0) + c.stored_grid() * c.stored_grid();
  pos_embed = register_parameter("pos_embed", Tensor::zeros({positions, D}, c.dtype));
  if (c.pre_norm)
    norm_pre = register_module("norm_pre", std::make_shared<nn::LayerNorm>(
                                               Shape{D}, c.ln_eps, true, true, c.dtype));
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(std::make_shared<VitBlock>(c));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(Shape{D}, c.ln_eps, true, true,
                                                                 c.dtype));
  if (c.proj_dim > 0)
    proj = register_module("proj", std::make_shared<nn::Linear>(D, c.proj_dim, false, c.dtype));
  eval();  // an inference model: nothing here behaves differently in training, but say so
}

VitBlock& VisionTransformer::block(int64_t i) const { return *blocks->at<VitBlock>(size_t(i)); }

std::vector<int64_t> VisionTransformer::all_layers() const {
  std::vector<int64_t> layers;
  for (int64_t l = 0; l <= config_.depth; ++l) layers.push_back(l);
  layers.push_back(kFinalLayer);
  return layers;
}

Tensor VisionTransformer::position_embedding(int64_t gh, int64_t gw) const {
  const int64_t M = config_.stored_grid(), D = config_.width;
  if (gh == M && gw == M) return pos_embed;
  SH_CHECK(config_.pos_interpolation != PosInterpolation::none, "ViT: the input is a ", gh, " x ",
           gw, " patch grid (", gh * config_.patch_size, " x ", gw * config_.patch_size,
           " px) but the position embedding is for ", M, " x ", M, " (",
           M * config_.patch_size, " px), and this model does not interpolate it");
  const int64_t first = config_.class_token ? 1 : 0;
  const Tensor stored = pos_embed.detach().slice(0, first, first + M * M).view({M, M, D});
  Tensor patches = resize_position_grid(stored, gh, gw, config_.pos_interpolation)
                       .to(pos_embed.dtype())
                       .view({gh * gw, D});
  if (!config_.class_token) return patches;
  return concat({pos_embed.detach().slice(0, 0, 1), patches}, 0);
}

Tensor VisionTransformer::embed(const Tensor& images) {
  const VitConfig& c = config_;
  SH_CHECK(images.dim() == 4 && images.size(1) == 3, "ViT: expected images [N, 3, H, W], got ",
           shape_str(images.shape()));
  const int64_t N = images.size(0), P = c.patch_size, D = c.width;
  const int64_t gh = images.size(2) / P, gw = images.size(3) / P;
  SH_CHECK(gh > 0 && gw > 0, "ViT: images ", shape_str(images.shape()),
           " are smaller than one ", P, " x ", P, " patch");
  const Tensor x_in = images.dtype() == c.dtype ? images : images.to(c.dtype);

  // The strided patch convolution as one matrix product: each patch, flattened in the weight's
  // (channel, row, column) order, times the weight viewed as [D, 3 P P]. Pixels past the last
  // whole patch are dropped, as the convolution drops them.
  const Tensor patches = x_in.slice(2, 0, gh * P)
                             .slice(3, 0, gw * P)
                             .reshape({N, 3, gh, P, gw, P})
                             .permute({0, 2, 4, 1, 3, 5})
                             .reshape({N, gh * gw, 3 * P * P});
  Tensor x = linear(patches, patch_embed->weight.view({D, 3 * P * P}), patch_embed->bias);

  const Tensor pos = position_embedding(gh, gw);
  std::vector<Tensor> parts;
  if (c.class_token) {
    x = x + pos.slice(0, 1, pos.size(0));
    parts.push_back((cls_token + pos.select(0, 0)).view({1, 1, D}).expand({N, 1, D}));
  } else {
    x = x + pos;
  }
  // DINOv2 inserts its registers after the class token, after the position embedding was added.
  if (c.register_tokens > 0)
    parts.push_back(reg_tokens.unsqueeze(0).expand({N, c.register_tokens, D}));
  if (!parts.empty()) {
    parts.push_back(x);
    x = concat(parts, 1);
  }
  return norm_pre ? norm_pre->forward(x) : x;
}

Tensor VisionTransformer::final_embedding(const Tensor& last) {
  const Tensor pooled = config_.final_pool == FinalPool::class_token
                            ? last.select(1, 0)
                            : mean(last.slice(1, config_.prefix_tokens(), last.size(1)), {1});
  // The norm is per token, so normalizing the pooled token alone equals pooling the normalized
  // sequence for the class token; for the patch mean, timm normalizes after pooling.
  const Tensor normed = norm->forward(pooled);
  return proj ? proj->forward(normed) : normed;
}

void VisionTransformer::forward_layers(const Tensor& images, const std::vector<int64_t>& layers,
                                       const LayerSink& sink) {
  const int64_t depth = config_.depth;
  std::set<int64_t> wanted;
  bool want_final = false;
  for (int64_t l : layers) {
    SH_CHECK(l == kFinalLayer || (l >= 0 && l <= depth), "layer ", l,
             " does not exist: this ViT has layers 0..", depth, " and final");
    if (l == kFinalLayer) want_final = true;
    else wanted.insert(l);
  }
  if (wanted.empty() && !want_final) return;
  const int64_t deepest = want_final ? depth : *wanted.rbegin();

  Tensor x = embed(images);
  if (wanted.count(0)) sink(0, x);
  for (int64_t i = 1; i <= deepest; ++i) {
    x = block(i - 1).run(std::move(x));  // the block's input dies inside it, unless handed out
    if (wanted.count(i)) sink(i, x);
  }
  if (want_final) sink(kFinalLayer, final_embedding(x));
}

LayerOutputs VisionTransformer::forward_layers(const Tensor& images,
                                               const std::vector<int64_t>& layers) {
  LayerOutputs out;
  forward_layers(images, layers, [&](int64_t l, const Tensor& t) { out[l] = t; });
  return out;
}

Tensor VisionTransformer::forward(const Tensor& images) {
  return forward_layers(images, {kFinalLayer}).at(kFinalLayer);
}

}  // namespace shallow::models
