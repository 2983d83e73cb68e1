#include "weights_import/safetensors.h"

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

namespace shallow {
namespace {

DType safetensors_dtype(const std::string& s, const std::string& path, const std::string& name) {
  if (s == "F32") return DType::f32;
  if (s == "F64") return DType::f64;
  if (s == "BF16") return DType::bf16;
  if (s == "F16") return DType::f16;
  if (s == "I32") return DType::i32;
  if (s == "I64") return DType::i64;
  if (s == "U8" || s == "BOOL") return DType::u8;
  throw Error(path + ": tensor '" + name + "' has unsupported dtype " + s);
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  SH_CHECK(in, path, ": cannot open file");
  const int64_t size = int64_t(in.tellg());
  in.seekg(0);
  SH_CHECK(size >= 8, path, ": truncated (", size, " bytes; a safetensors file starts with an 8-byte header length)");
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  SH_CHECK(header_len <= uint64_t(size - 8), path, ": header length ", header_len,
           " is past the end of the ", size, "-byte file");
  std::string header(header_len, '\0');
  in.read(header.data(), int64_t(header_len));
  const int64_t data_start = 8 + int64_t(header_len);
  const int64_t data_bytes = size - data_start;
  auto storage = std::make_shared<Storage>(size_t(data_bytes), Device::cpu());
  in.read(static_cast<char*>(storage->data()), data_bytes);
  SH_CHECK(in, path, ": read failed");

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const std::exception& e) {
    throw Error(path + ": header is not valid JSON (" + e.what() + ")");
  }
  SH_CHECK(j.is_object(), path, ": header is not a JSON object");
  SafetensorsFile f;
  for (auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      SH_CHECK(v.is_object(), path, ": __metadata__ is not an object");
      for (auto& [k, s] : v.items()) {
        SH_CHECK(s.is_string(), path, ": __metadata__ value '", k, "' is not a string");
        f.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    SH_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
             path, ": tensor '", name, "' lacks dtype, shape or data_offsets");
    DType dt = safetensors_dtype(v["dtype"].get<std::string>(), path, name);
    Shape shape;
    for (auto& d : v["shape"]) {
      SH_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, path, ": tensor '", name, "' has a bad shape");
      shape.push_back(d.get<int64_t>());
    }
    auto& off = v["data_offsets"];
    SH_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
             path, ": tensor '", name, "' has bad data_offsets");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    SH_CHECK(b <= e && e <= uint64_t(data_bytes), path, ": tensor '", name, "' spans bytes [", b, ", ", e,
             ") outside the ", data_bytes, "-byte data section");
    int64_t numel;
    try {
      numel = shape_numel(shape);
    } catch (const Error& err) {
      throw Error(path + ": tensor '" + name + "': " + err.what());
    }
    SH_CHECK(uint64_t(numel) <= (e - b) / dtype_size(dt) && uint64_t(numel) * dtype_size(dt) == e - b,
             path, ": tensor '", name, "' of shape ", shape_str(shape), " needs ", numel, " elements but has ",
             e - b, " bytes");
    SH_CHECK(b % dtype_size(dt) == 0, path, ": tensor '", name, "' starts at a misaligned offset ", b);
    f.tensors[name] = Tensor::from_storage(storage, shape, dt, {}, int64_t(b / dtype_size(dt)));
  }
  return f;
}

}  // namespace shallow
