#include "weights_import/safetensors.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "weights_import/elements.h"
#include "weights_import/file_writer.h"

namespace shallow {
namespace {

// The reference implementation refuses headers above this size; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

bool parse_dtype(const std::string& s, ElementType* out) {
  static const std::pair<const char*, ElementType> kTypes[] = {
      {"F64", ElementType::f64}, {"F32", ElementType::f32}, {"F16", ElementType::f16},
      {"BF16", ElementType::bf16}, {"I64", ElementType::i64}, {"I32", ElementType::i32},
      {"I16", ElementType::i16}, {"I8", ElementType::i8}, {"U8", ElementType::u8},
      {"U16", ElementType::u16}, {"U32", ElementType::u32}, {"U64", ElementType::u64},
      {"BOOL", ElementType::boolean}};
  for (auto& [name, type] : kTypes)
    if (s == name) {
      *out = type;
      return true;
    }
  return false;
}

struct Entry {
  std::string name;
  ElementType type;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& v) {
  const std::string where = path + ": tensor '" + name + "'";
  SH_CHECK(v.is_object(), where, ": header entry is not a JSON object");
  for (auto& [key, _] : v.items())
    SH_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", where, ": unexpected field '", key, "'");
  SH_CHECK(v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), where,
           ": lacks dtype, shape or data_offsets");
  Entry e{name, ElementType::f32, {}, 0, 0};
  const auto& dtype = v["dtype"];
  SH_CHECK(dtype.is_string(), where, ": dtype is not a string");
  SH_CHECK(parse_dtype(dtype.get<std::string>(), &e.type), where, ": unsupported dtype ", dtype.get<std::string>(),
           " (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 U16 U32 U64 BOOL)");
  const auto& shape = v["shape"];
  SH_CHECK(shape.is_array(), where, ": shape is not a list");
  for (auto& d : shape) {
    SH_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= uint64_t(INT64_MAX), where, ": shape ", shape.dump(),
             " holds something other than a non-negative integer");
    e.shape.push_back(d.get<int64_t>());
  }
  const auto& off = v["data_offsets"];
  SH_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), where,
           ": data_offsets is not a pair of non-negative integers");
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  SH_CHECK(e.begin <= e.end, where, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  return e;
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) { return parse_safetensors(map_file(path)); }

SafetensorsFile parse_safetensors(const FileBytes& bytes) {
  const std::string& path = bytes.name;
  SH_CHECK(bytes.size >= 8, path, ": truncated (", bytes.size,
           " bytes; a safetensors file starts with an 8-byte header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes.data[i];
  SH_CHECK(header_len <= bytes.size - 8, path, ": header length ", header_len, " is past the end of the ",
           bytes.size, "-byte file");
  SH_CHECK(header_len <= kMaxHeaderBytes, path, ": header length ", header_len, " exceeds the format's limit of ",
           kMaxHeaderBytes, " bytes");
  const char* header = reinterpret_cast<const char*>(bytes.data + 8);
  SH_CHECK(header_len > 0 && header[0] == '{', path, ": header does not start with '{'");

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header, header + header_len);
  } catch (const std::exception& e) {
    throw Error(path + ": header is not valid JSON (" + e.what() + ")");
  }
  SH_CHECK(j.is_object(), path, ": header is not a JSON object");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_bytes = bytes.size - data_start;
  SafetensorsFile f;
  f.path = path;
  f.format = "safetensors";
  std::vector<Entry> entries;
  for (auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      SH_CHECK(v.is_object(), path, ": __metadata__ is not an object");
      for (auto& [k, s] : v.items()) {
        SH_CHECK(s.is_string(), path, ": __metadata__ value '", k, "' is not a string");
        f.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, name, v));
  }

  // The byte ranges, in order, must cover the data section exactly once.
  std::vector<const Entry*> by_offset;
  for (auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t covered = 0;
  for (const Entry* e : by_offset) {
    SH_CHECK(e->begin == covered, path, ": tensor '", e->name, "' starts at data offset ", e->begin, " but ",
             e->begin < covered ? "the previous tensor ends later, at " : "the previous tensor ends at ", covered,
             e->begin < covered ? " (overlap)" : " (gap)");
    SH_CHECK(e->end <= data_bytes, path, ": tensor '", e->name, "' spans bytes [", e->begin, ", ", e->end,
             ") past the end of the ", data_bytes, "-byte data section");
    covered = e->end;
  }
  SH_CHECK(covered == data_bytes, path, ": the tensors cover ", covered, " bytes of the ", data_bytes,
           "-byte data section");

  for (const Entry& e : entries) {
    const std::string where = path + ": tensor '" + e.name + "'";
    int64_t numel = 0;
    try {
      numel = shape_numel(e.shape);
    } catch (const Error& err) {
      throw Error(where + ": " + err.what());
    }
    const size_t nbytes = checked_byte_count(numel, element_size(e.type), size_t(e.end - e.begin), where);
    SH_CHECK(nbytes == e.end - e.begin, where, " of dtype ", element_name(e.type), " and shape ",
             shape_str(e.shape), " needs ", nbytes, " bytes but its data_offsets span ", e.end - e.begin);
    const StoredType stored{e.type, false};
    auto storage = storage_from_bytes(bytes.data + data_start + e.begin, size_t(numel), stored, bytes.owner, where);
    f.tensors[e.name] = Tensor::from_storage(std::move(storage), e.shape, engine_dtype(e.type));
    if (dtype_name(engine_dtype(e.type)) != std::string(element_name(e.type)))
      f.stored_dtypes[e.name] = element_name(e.type);
  }
  return f;
}

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f64: return "F64";
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::u8: return "U8";
  }
  return "?";
}

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> order;
  for (auto& [name, t] : tensors) {
    SH_CHECK(!name.empty() && name != "__metadata__", path, ": cannot name a tensor '", name, "'");
    SH_CHECK(t.defined(), path, ": tensor '", name, "' is undefined");
    order.emplace_back(name, t.to(Device::cpu()).contiguous());
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return dtype_size(a.second.dtype()) > dtype_size(b.second.dtype());
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (auto& [name, t] : order) {
    const uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');  // keeps the data section 8-byte aligned

  FileWriter out(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  out.write(len, 8);
  out.write(text);
  for (auto& [name, t] : order) out.write(t.raw_data(), size_t(t.numel()) * dtype_size(t.dtype()));
  out.commit();
}

}  // namespace shallow
