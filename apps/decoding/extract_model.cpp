#include "apps/decoding/extract_model.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "weights_import/config.h"
#include "weights_import/tensor_file.h"

namespace shallow::decoding {

namespace fs = std::filesystem;
using json = nlohmann::json;
using name_maps::Architecture;
using name_maps::Layout;

// ---------------------------------------------------------------- config files

namespace {

std::array<float, 3> triple(const json& v, const std::string& where) {
  SH_CHECK(v.is_array() && v.size() == 3 && v[0].is_number() && v[1].is_number() && v[2].is_number(),
           where, " should be three numbers, got ", v.dump());
  return {v[0].get<float>(), v[1].get<float>(), v[2].get<float>()};
}

int64_t positive(const json& v, const std::string& where) {
  SH_CHECK(v.is_number_integer() && v.get<int64_t>() > 0, where,
           " should be a positive integer, got ", v.dump());
  return v.get<int64_t>();
}

// This project's own keys, for what no library config says (or to override it).
ModelSettings own_settings(const json& j, const std::string& path) {
  static const std::set<std::string> kKeys = {"heads", "act", "ln_eps", "input_size",
                                              "resize_size", "mean", "std"};
  ModelSettings s;
  s.source = path;
  for (const auto& [key, v] : j.items()) {
    const std::string where = path + ": '" + key + "'";
    SH_CHECK(kKeys.count(key), path, ": unknown key '", key, "' (a config here is HF's config.json, "
             "OpenCLIP's open_clip_config.json, or JSON with heads, act, ln_eps, input_size, "
             "resize_size, mean, std)");
    if (key == "heads") s.heads = positive(v, where);
    if (key == "input_size") s.input_size = positive(v, where);
    if (key == "resize_size") s.resize_size = positive(v, where);
    if (key == "mean") s.mean = triple(v, where);
    if (key == "std") s.std = triple(v, where);
    if (key == "ln_eps") {
      SH_CHECK(v.is_number() && v.get<double>() > 0, where, " should be a positive number");
      s.ln_eps = v.get<double>();
    }
    if (key == "act") {
      SH_CHECK(v.is_string(), where, " should be gelu or quick_gelu");
      s.act = models::parse_activation(v.get<std::string>());
    }
  }
  return s;
}

// A library's config, through weights_import's reader (which knows each library's defaults).
ModelSettings library_settings(const std::string& text, const std::string& path) {
  const VisionConfig c = parse_vision_config(text, path);
  ModelSettings s;
  s.source = path;
  s.heads = c.num_heads;
  if (!c.hidden_act.empty()) s.act = models::parse_activation(c.hidden_act);
  s.ln_eps = c.layer_norm_eps;
  s.width = c.hidden_size;
  s.depth = c.resnet_layers.empty() ? c.num_layers : 0;
  auto three = [&](const std::vector<double>& v, const char* what) -> std::optional<std::array<float, 3>> {
    if (v.empty()) return std::nullopt;
    SH_CHECK(v.size() == 3, path, ": ", what, " has ", v.size(), " values, not 3");
    return std::array<float, 3>{float(v[0]), float(v[1]), float(v[2])};
  };
  s.mean = three(c.image_mean, "mean");
  s.std = three(c.image_std, "std");
  return s;
}

}  // namespace

ModelSettings read_model_settings(const std::string& path) {
  std::ifstream in(path);
  SH_CHECK(in.good(), "cannot open the config file ", path);
  std::ostringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::exception& e) {
    throw Error(str_cat(path, ": not valid JSON (", e.what(), ")"));
  }
  SH_CHECK(j.is_object(), path, ": not a JSON object");
  const bool library = j.contains("model_type") || j.contains("model_cfg") || j.contains("vision_cfg");
  return library ? library_settings(text.str(), path) : own_settings(j, path);
}

// ---------------------------------------------------------------- the model

namespace {

// Published models keep 64 channels per head up to width 1024 (B, L) and 16 heads above
// (H/14: 1280, g/14: 1408, bigG/14: 1664).
int64_t default_heads(int64_t channels) {
  if (channels > 1024) return 16;
  SH_CHECK(channels % 64 == 0, "cannot tell the number of attention heads of a ", channels,
           "-channel attention: give it in a config file (--config, JSON with \"heads\")");
  return channels / 64;
}

models::BackboneFamily family_of(Layout layout) {
  switch (layout) {
    case Layout::hf_dinov2:
    case Layout::dinov2: return models::BackboneFamily::dinov2;
    case Layout::timm_vit: return models::BackboneFamily::timm;
    default: return models::BackboneFamily::clip;
  }
}

// `resnet`: OpenCLIP's ModifiedResNets always pool with 64 channels per head.
int64_t heads_for(int64_t channels, bool resnet, const ModelSettings& s,
                  std::vector<std::string>* notes) {
  if (s.heads > 0) return s.heads;
  SH_CHECK(!resnet || channels % 64 == 0, "cannot tell the attention pool's heads of a ",
           channels, "-channel ResNet: give them in a config file (--config, JSON with \"heads\")");
  const int64_t h = resnet ? channels / 64 : default_heads(channels);
  notes->push_back(str_cat("heads: ", h, " (the usual split of ", channels,
                           " channels; a config file can say otherwise)"));
  return h;
}

models::Activation activation(Layout layout, const ModelSettings& s, const BackboneOptions& opt,
                              std::vector<std::string>* notes) {
  if (opt.act) return *opt.act;
  if (s.act) return *s.act;
  if (layout == Layout::hf_clip) return models::Activation::quick_gelu;  // HF CLIP's default
  if (layout == Layout::openclip_vit)
    notes->push_back("activation: gelu, OpenCLIP's default (OpenAI's own CLIP weights need "
                     "--act quick_gelu)");
  return models::Activation::gelu;
}

void check_against_config(const Architecture& arch, const ModelSettings& s) {
  const int64_t width = arch.is_resnet() ? arch.resnet.width : arch.vit.width;
  SH_CHECK(s.width == 0 || s.width == width, s.source, " describes a model of width ", s.width,
           " but the weights have width ", width);
  SH_CHECK(s.depth == 0 || arch.is_resnet() || s.depth == arch.vit.depth, s.source,
           " describes ", s.depth, " blocks but the weights have ", arch.vit.depth);
}

models::VitConfig vit_config(const Architecture& arch, const ModelSettings& s,
                             const BackboneOptions& opt, std::vector<std::string>* notes) {
  const name_maps::VitShape& v = arch.vit;
  models::VitConfig c;
  c.patch_size = v.patch_size;
  c.pos_grid = v.pos_grid;
  c.width = v.width;
  c.depth = v.depth;
  c.mlp_dim = v.mlp_dim;
  c.proj_dim = v.proj_dim;
  c.register_tokens = v.register_tokens;
  c.class_token = v.class_token;
  c.pre_norm = v.pre_norm;
  c.layer_scale = v.layer_scale;
  c.patch_bias = v.patch_bias;
  c.qkv_bias = v.qkv_bias;
  c.final_pool = v.final_patch_mean ? models::FinalPool::patch_mean : models::FinalPool::class_token;
  c.dtype = opt.dtype;
  c.act = activation(arch.layout, s, opt, notes);
  c.heads = heads_for(v.width, false, s, notes);
  const bool clip_like = arch.layout == Layout::openclip_vit || arch.layout == Layout::hf_clip;
  c.ln_eps = s.ln_eps > 0 ? s.ln_eps : clip_like ? 1e-5 : 1e-6;

  // CLIP and timm run at the size their position embedding was trained for; DINOv2 was trained
  // at 518 px and is evaluated at 224 unless told otherwise.
  const bool dinov2 = family_of(arch.layout) == models::BackboneFamily::dinov2;
  c.image_size = s.input_size > 0 ? s.input_size : dinov2 ? 224 : v.pos_grid * v.patch_size;
  if (arch.layout == Layout::hf_dinov2)
    c.pos_interpolation = v.register_tokens ? models::PosInterpolation::bicubic_antialias
                                            : models::PosInterpolation::bicubic;
  else if (arch.layout == Layout::dinov2)
    c.pos_interpolation = models::PosInterpolation::bicubic_scale_offset;
  return c;
}

models::ClipResNetConfig resnet_config(const Architecture& arch, const ModelSettings& s,
                                       const BackboneOptions& opt, std::vector<std::string>* notes) {
  const name_maps::ResNetShape& r = arch.resnet;
  models::ClipResNetConfig c;
  c.layers = r.layers;
  c.width = r.width;
  c.output_dim = r.output_dim;
  c.image_size = r.grid * 32;
  SH_CHECK(s.input_size == 0 || s.input_size == c.image_size, s.source, ": input_size ",
           s.input_size, " but a CLIP ResNet runs at the size of its position embedding, ",
           c.image_size);
  c.dtype = opt.dtype;
  c.heads = heads_for(c.embed_dim(), true, s, notes);
  return c;
}

void apply_preprocess_settings(const ModelSettings& s, models::Backbone* b) {
  PreprocessConfig p = b->preprocess();
  if (s.mean) p.mean = *s.mean;
  if (s.std) p.std = *s.std;
  if (s.resize_size > 0) p.resize_size = int(s.resize_size);
  SH_CHECK(p.resize_size >= p.crop_size, s.source, ": resize_size ", p.resize_size,
           " is smaller than the input size ", p.crop_size);
  b->set_preprocess(p);
}

// The model's tensors must be exactly the canonical ones; a mismatch names them.
void load_weights(nn::Module& model, const name_maps::Tensors& canonical, const Architecture& arch) {
  try {
    model.load_state_dict(nn::StateDict(canonical.begin(), canonical.end()), true);
  } catch (const Error& e) {
    throw Error(str_cat(name_maps::layout_name(arch.layout),
                        " weights do not fit the model they describe: ", e.what()));
  }
}

}  // namespace

LoadedBackbone load_backbone(const name_maps::Tensors& tensors, const ModelSettings& settings,
                             const BackboneOptions& opt) {
  LoadedBackbone out;
  out.architecture = name_maps::detect_architecture(tensors);
  const Architecture& arch = out.architecture;
  check_against_config(arch, settings);
  const name_maps::Tensors canonical = name_maps::to_canonical(tensors, arch);
  if (arch.is_resnet()) {
    auto net = std::make_shared<models::ClipResNet>(resnet_config(arch, settings, opt, &out.notes));
    load_weights(*net, canonical, arch);
    out.backbone = models::make_backbone(net);
  } else {
    auto vit = std::make_shared<models::VisionTransformer>(vit_config(arch, settings, opt, &out.notes));
    load_weights(*vit, canonical, arch);
    out.backbone = models::make_backbone(vit, family_of(arch.layout));
  }
  apply_preprocess_settings(settings, out.backbone.get());
  return out;
}

LoadedBackbone load_backbone(const std::string& weights_path, const BackboneOptions& opt) {
  SH_CHECK(fs::exists(weights_path), "weights file not found: ", weights_path);
  SH_CHECK(!fs::is_directory(weights_path), "--weights ", weights_path,
           " is a folder: give the weights file itself (model.safetensors, *.bin, *.pt, ...)");
  std::string config_path = opt.config_path;
  if (config_path.empty()) {
    // HF and OpenCLIP repositories keep their config beside the weights.
    for (const char* name : {"config.json", "open_clip_config.json"}) {
      const fs::path p = fs::path(weights_path).parent_path() / name;
      if (fs::exists(p)) {
        config_path = p.string();
        break;
      }
    }
  }
  const ModelSettings settings = config_path.empty() ? ModelSettings{} : read_model_settings(config_path);
  LoadedBackbone out;
  {
    const TensorFile file = read_tensor_file(weights_path);
    out = load_backbone(file.tensors, settings, opt);
  }  // the file's tensors go here; the model holds its own copies
  if (!config_path.empty()) out.notes.insert(out.notes.begin(), "config: " + config_path);
  return out;
}

}  // namespace shallow::decoding
