// make_eeg_encoder: the encoders by name, each with its published default size.
#include <functional>
#include <utility>

#include "models/eeg/atms.h"
#include "models/eeg/eeg_project.h"
#include "models/eeg/eegnet.h"
#include "models/eeg/encoder.h"
#include "models/eeg/shallownet.h"
#include "models/eeg/tsconv.h"

namespace shallow::models {
namespace {

struct Entry {
  const char* name;
  int64_t default_embed_dim;
  std::function<std::shared_ptr<EegEncoder>(EegShape, int64_t)> make;
};

template <class M>
Entry entry(const char* name) {
  return {name, M::kDefaultEmbedDim,
          [](EegShape shape, int64_t dim) { return std::make_shared<M>(shape, dim); }};
}

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      entry<EegProject>("eegproject"), entry<TsconvEncoder>("tsconv"),
      entry<AtmsEncoder>("atms"),      entry<EegNet>("eegnet"),
      entry<ShallowNet>("shallownet")};
  return entries;
}

}  // namespace

std::shared_ptr<EegEncoder> make_eeg_encoder(const std::string& name, EegShape shape,
                                             int64_t embed_dim) {
  SH_CHECK(embed_dim >= 0, "make_eeg_encoder: embed_dim must be positive (or 0 for the default), got ",
           embed_dim);
  for (const Entry& e : registry())
    if (name == e.name) return e.make(shape, embed_dim == 0 ? e.default_embed_dim : embed_dim);
  std::string known;
  for (const Entry& e : registry()) known += std::string(known.empty() ? "" : ", ") + e.name;
  throw Error("unknown EEG encoder '" + name + "'; known encoders: " + known);
}

std::vector<std::string> eeg_encoder_names() {
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.emplace_back(e.name);
  return names;
}

}  // namespace shallow::models
