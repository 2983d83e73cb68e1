// shallow extract: the features of a folder of images at chosen layers of a vision backbone,
// one .npy file per layer (see apps/decoding/extract.h for the files it writes).
#include <memory>
#include <ostream>

#include "apps/decoding/extract.h"
#include "apps/shallow/commands.h"

namespace shallow::cli {
namespace {

struct ExtractFlags {
  std::string weights, images, out, layers = "final", pool = "cls", config, act;
  std::string device = "cpu", dtype = "f32";
  int64_t batch = 32;
  int threads = 0, decode_threads = 0;
  bool skip_bad = false, quiet = false;
};

int extract(const ExtractFlags& f, Streams& s) {
  decoding::ExtractOptions o;
  o.weights = f.weights;
  o.images = f.images;
  o.out_dir = f.out;
  o.layers = f.layers;
  o.pooling = models::parse_pooling(f.pool);
  o.model.config_path = f.config;
  if (!f.act.empty()) o.model.act = models::parse_activation(f.act);
  SH_CHECK(f.dtype == "f32" || f.dtype == "bf16", "--dtype ", f.dtype, ": expected f32 or bf16");
  o.model.dtype = f.dtype == "bf16" ? DType::bf16 : DType::f32;
  o.batch = f.batch;
  SH_CHECK(f.threads >= 0 && f.decode_threads >= 0, "--threads and --decode-threads cannot be negative");
  o.threads = f.threads;
  o.decode_threads = f.decode_threads;
  o.device = Device::parse(f.device);
  o.skip_bad = f.skip_bad;
  o.progress = !f.quiet;

  const decoding::ExtractResult r = decoding::run_extract(o, s.err);
  for (const std::string& file : r.files) s.out << "wrote " << file << "\n";
  s.out << r.images << " images in " << decoding::clock_text(r.seconds) << " ("
        << (r.seconds > 0 ? double(r.images) / r.seconds : 0.0) << " images/s)";
  if (!r.skipped.empty()) s.out << ", " << r.skipped.size() << " unreadable images skipped";
  s.out << "\npeak memory: " << decoding::human_bytes(r.peak_bytes) << " (model weights "
        << decoding::human_bytes(r.model_bytes) << ")\n";
  if (r.device_peak_bytes > 0)
    s.out << "peak GPU memory: " << decoding::human_bytes(r.device_peak_bytes) << "\n";
  return 0;
}

}  // namespace

void add_extract(CLI::App& app, Action* action) {
  auto f = std::make_shared<ExtractFlags>();
  CLI::App* sub = app.add_subcommand(
      "extract", "Features of a folder of images at chosen layers of a vision backbone "
                 "(CLIP/OpenCLIP ViT or ResNet, DINOv2, timm ViT): DIR/layer_<l>.npy and DIR/images.txt");
  sub->add_option("--weights", f->weights, "the backbone's weights (.safetensors, .pt/.pth/.bin, .npz)")
      ->required();
  sub->add_option("--images", f->images,
                  "a folder of images (walked recursively, sorted by path) or a text file of paths "
                  "(one a line, relative to the file's folder)")
      ->required();
  sub->add_option("--out", f->out, "the folder to write layer_<l>.npy and images.txt into")->required();
  sub->add_option("--layers", f->layers,
                  "comma-separated: layer numbers (0 = embeddings, l = output of block l; ResNet "
                  "stages 1..4), final, all, and pixels for the preprocessed input")
      ->capture_default_str();
  sub->add_option("--pool", f->pool,
                  "cls (class token), mean (patch tokens; spatial mean for a ResNet), all (every "
                  "token), none (keep every token)")
      ->capture_default_str();
  sub->add_option("--config", f->config,
                  "a JSON config (HF config.json, OpenCLIP open_clip_config.json, or heads/act/"
                  "ln_eps/input_size/resize_size/mean/std); default: one beside the weights");
  sub->add_option("--act", f->act, "the MLP activation, gelu or quick_gelu (OpenAI's CLIP weights)");
  sub->add_option("--batch", f->batch, "images per forward pass")->capture_default_str();
  sub->add_option("--threads", f->threads, "compute threads (default: all)");
  sub->add_option("--decode-threads", f->decode_threads,
                  "threads decoding images ahead of the model (default: a quarter of the cores, 1 to 4)");
  sub->add_option("--device", f->device, "cpu or cuda")->capture_default_str();
  sub->add_option("--dtype", f->dtype,
                  "f32 or bf16. bf16: weights cast to bf16 once at load, activations bf16 between "
                  "layers, matrix products on the bf16 GEMM with f32 sums (AVX512_BF16 where the CPU "
                  "has it); layer norm, softmax, attention, GELU, pooling and a ResNet's "
                  "convolutions and batch norms compute in f32 from bf16 inputs and round back; the "
                  "files are float32 either way (docs/DECISIONS.md)")
      ->capture_default_str();
  sub->add_flag("--skip-bad", f->skip_bad, "list and skip images that cannot be read instead of stopping");
  sub->add_flag("--quiet", f->quiet, "no progress bar");
  sub->callback([f, action] { *action = [f](Streams& s) { return extract(*f, s); }; });
}

}  // namespace shallow::cli
