#include "weights_import/config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"

namespace shallow {
namespace {

using Json = nlohmann::json;

class Fields {
 public:
  Fields(const Json& j, std::string where) : j_(j), where_(std::move(where)) {}

  int64_t integer(const char* key, int64_t fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    const Json& v = j_[key];
    SH_CHECK(v.is_number_integer() && v.get<int64_t>() > 0, where_, ": '", key, "' is ", v.dump(),
             ", not a positive integer");
    return v.get<int64_t>();
  }
  double number(const char* key, double fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    const Json& v = j_[key];
    SH_CHECK(v.is_number(), where_, ": '", key, "' is ", v.dump(), ", not a number");
    return v.get<double>();
  }
  std::string text(const char* key, const std::string& fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    const Json& v = j_[key];
    SH_CHECK(v.is_string(), where_, ": '", key, "' is ", v.dump(), ", not a string");
    return v.get<std::string>();
  }
  bool flag(const char* key, bool fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    SH_CHECK(j_[key].is_boolean(), where_, ": '", key, "' is not true or false");
    return j_[key].get<bool>();
  }
  std::vector<double> numbers(const char* key) const {
    std::vector<double> out;
    if (!j_.contains(key) || j_[key].is_null()) return out;
    SH_CHECK(j_[key].is_array(), where_, ": '", key, "' is not a list");
    for (const Json& v : j_[key]) {
      SH_CHECK(v.is_number(), where_, ": '", key, "' holds ", v.dump());
      out.push_back(v.get<double>());
    }
    return out;
  }

 private:
  const Json& j_;
  std::string where_;
};

// HF CLIPVisionConfig, defaults as in transformers.
VisionConfig hf_clip(const Json& vision, int64_t projection_dim, const std::string& where) {
  const Fields f(vision, where);
  VisionConfig c;
  c.source = "hf clip";
  c.hidden_size = f.integer("hidden_size", 768);
  c.intermediate_size = f.integer("intermediate_size", 3072);
  c.num_layers = f.integer("num_hidden_layers", 12);
  c.num_heads = f.integer("num_attention_heads", 12);
  c.image_size = f.integer("image_size", 224);
  c.patch_size = f.integer("patch_size", 32);
  c.projection_dim = projection_dim ? projection_dim : f.integer("projection_dim", 512);
  c.hidden_act = f.text("hidden_act", "quick_gelu");
  c.layer_norm_eps = f.number("layer_norm_eps", 1e-5);
  return c;
}

// HF Dinov2Config (and Dinov2WithRegistersConfig).
VisionConfig hf_dinov2(const Json& j, const std::string& where) {
  const Fields f(j, where);
  VisionConfig c;
  c.source = "hf dinov2";
  c.hidden_size = f.integer("hidden_size", 768);
  c.num_layers = f.integer("num_hidden_layers", 12);
  c.num_heads = f.integer("num_attention_heads", 12);
  c.intermediate_size = int64_t(double(c.hidden_size) * f.number("mlp_ratio", 4.0));
  c.image_size = f.integer("image_size", 224);
  c.patch_size = f.integer("patch_size", 14);
  c.hidden_act = f.text("hidden_act", "gelu");
  c.layer_norm_eps = f.number("layer_norm_eps", 1e-6);
  c.layerscale_value = f.number("layerscale_value", 1.0);
  if (j.contains("num_register_tokens") && !j["num_register_tokens"].is_null()) {
    SH_CHECK(j["num_register_tokens"].is_number_integer() && j["num_register_tokens"].get<int64_t>() >= 0, where,
             ": 'num_register_tokens' is not a non-negative integer");
    c.num_register_tokens = j["num_register_tokens"].get<int64_t>();
  }
  SH_CHECK(!f.flag("use_swiglu_ffn", false), where, ": DINOv2 with a SwiGLU MLP (giant) is not supported");
  return c;
}

// OpenCLIP: {"embed_dim", "vision_cfg": {...}, "quick_gelu"}, possibly under "model_cfg".
VisionConfig open_clip(const Json& model, const Json* preprocess, const std::string& where) {
  SH_CHECK(model.contains("vision_cfg") && model["vision_cfg"].is_object(), where, ": 'vision_cfg' is not an object");
  const Json& v = model["vision_cfg"];
  const Fields top(model, where), f(v, where + ": vision_cfg");
  VisionConfig c;
  c.source = "open_clip";
  c.projection_dim = top.integer("embed_dim", 0);
  c.image_size = f.integer("image_size", 224);
  c.hidden_size = f.integer("width", 768);
  c.hidden_act = top.flag("quick_gelu", false) ? "quick_gelu" : "gelu";
  c.layer_norm_eps = 1e-5;
  if (v.contains("layers") && v["layers"].is_array()) {
    // ModifiedResNet: layers lists the blocks of each of the four stages; width is the stem's.
    for (const Json& n : v["layers"]) {
      SH_CHECK(n.is_number_integer() && n.get<int64_t>() > 0, where, ": vision_cfg.layers holds ", n.dump());
      c.resnet_layers.push_back(n.get<int64_t>());
    }
    SH_CHECK(c.resnet_layers.size() == 4, where, ": a ResNet's vision_cfg.layers has ", c.resnet_layers.size(),
             " stages, not 4");
    c.hidden_size = f.integer("width", 64);
    c.num_heads = c.hidden_size * 32 / f.integer("head_width", 64);
    return c;
  }
  c.num_layers = f.integer("layers", 12);
  c.patch_size = f.integer("patch_size", 16);
  c.num_heads = c.hidden_size / f.integer("head_width", 64);
  c.intermediate_size = int64_t(double(c.hidden_size) * f.number("mlp_ratio", 4.0));
  if (preprocess && preprocess->is_object()) {
    const Fields p(*preprocess, where + ": preprocess_cfg");
    c.image_mean = p.numbers("mean");
    c.image_std = p.numbers("std");
  }
  return c;
}

}  // namespace

VisionConfig parse_vision_config(const std::string& text, const std::string& name) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    throw Error(name + ": not valid JSON (" + e.what() + ")");
  }
  SH_CHECK(j.is_object(), name, ": not a JSON object");
  if (j.contains("model_cfg") && j["model_cfg"].is_object())
    return open_clip(j["model_cfg"], j.contains("preprocess_cfg") ? &j["preprocess_cfg"] : nullptr, name);
  if (j.contains("vision_cfg")) return open_clip(j, nullptr, name);

  const std::string type = Fields(j, name).text("model_type", "");
  if (type == "clip") {
    SH_CHECK(j.contains("vision_config") && j["vision_config"].is_object(), name, ": CLIP config lacks 'vision_config'");
    return hf_clip(j["vision_config"], Fields(j, name).integer("projection_dim", 512), name + ": vision_config");
  }
  if (type == "clip_vision_model") return hf_clip(j, 0, name);
  if (type == "dinov2" || type == "dinov2_with_registers") return hf_dinov2(j, name);
  throw Error(name + ": unsupported model_type '" + type +
              "' (supported: clip, clip_vision_model, dinov2, dinov2_with_registers, and OpenCLIP configs)");
}

VisionConfig read_vision_config(const std::string& path) {
  std::ifstream in(path);
  SH_CHECK(in.good(), path, ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_vision_config(text.str(), path);
}

}  // namespace shallow
