// shallow convert IN OUT: every tensor of any readable file, names and values unchanged, to a
// .safetensors file (or .npz by OUT's ending), so that an old pickle checkpoint becomes a safe,
// memory-mappable file once and for all.
#include <filesystem>
#include <memory>
#include <ostream>

#include "apps/shallow/commands.h"
#include "weights_import/tensor_file.h"

namespace shallow::cli {
namespace {

struct ConvertOptions {
  std::string in, out;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int convert(const ConvertOptions& o, Streams& s) {
  const bool npz = ends_with(o.out, ".npz");
  SH_CHECK(npz || ends_with(o.out, ".safetensors"), o.out, ": the output must end in .safetensors or .npz");
  std::error_code ec;
  SH_CHECK(!std::filesystem::equivalent(o.in, o.out, ec), o.out, ": is the input file itself");
  const TensorFile f = read_tensor_file(o.in);
  SH_CHECK(!f.tensors.empty(), o.in, ": holds no tensors to convert");

  std::map<std::string, std::string> metadata = f.metadata;  // checkpoint values, safetensors metadata
  metadata["converted_from"] = f.format;
  write_tensor_file(o.out, f.tensors, metadata);

  for (auto& [name, stored] : f.stored_dtypes)
    s.err << "note: " << name << " is stored as " << stored << " and written as "
          << dtype_name(f.tensors.at(name).dtype()) << "\n";
  if (npz) {
    for (auto& [name, t] : f.tensors)
      if (t.dtype() == DType::bf16) s.err << "note: " << name << " is bf16, written as f32 (NumPy has no bfloat16)\n";
    if (!f.metadata.empty()) s.err << "note: .npz has no place for metadata; " << f.metadata.size() << " entries dropped\n";
  }
  int64_t bytes = 0;
  for (auto& [name, t] : f.tensors) bytes += t.numel() * int64_t(dtype_size(t.dtype()));
  s.out << "wrote " << o.out << ": " << f.tensors.size() << " tensors, " << bytes << " bytes of data\n";
  return 0;
}

}  // namespace

void add_convert(CLI::App& app, Action* action) {
  auto opts = std::make_shared<ConvertOptions>();
  CLI::App* sub = app.add_subcommand(
      "convert", "Write every tensor of any readable file to a .safetensors file (or .npz by OUT's ending)");
  sub->add_option("IN", opts->in, "the file to read")->required();
  sub->add_option("OUT", opts->out, "the file to write: NAME.safetensors or NAME.npz")->required();
  sub->callback([opts, action] { *action = [opts](Streams& s) { return convert(*opts, s); }; });
}

}  // namespace shallow::cli
