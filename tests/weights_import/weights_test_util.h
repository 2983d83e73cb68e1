#pragma once
// Helpers shared by the weights_import tests: the value pattern the fixture script writes,
// raw file bytes, a scratch directory, and error expectations.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "engine/tensor.h"
#include "tests/support/errors.h"
#include "tests/support/fixtures.h"
#include "tests/support/scratch_dir.h"

namespace shallow::testing {

// tests/reference/weights_fixtures.py: element i of a tensor named after a dtype.
inline double pattern_value(int64_t i, char kind) {
  const int64_t k = (i * 7919) % 201;
  switch (kind) {
    case 'f': return double(k - 100) / 4.0;
    case 'i': return double(k - 100);
    case 'u': return double(k);
    default: return (i * 7919) % 3 == 0 ? 1.0 : 0.0;
  }
}

// Checks dtype, shape and every value (exactly) against the pattern.
inline ::testing::AssertionResult matches_pattern(const Tensor& t, DType dtype, const Shape& shape, char kind) {
  if (t.dtype() != dtype)
    return ::testing::AssertionFailure() << "dtype " << dtype_name(t.dtype()) << ", expected " << dtype_name(dtype);
  if (t.shape() != shape)
    return ::testing::AssertionFailure() << "shape " << shape_str(t.shape()) << ", expected " << shape_str(shape);
  const std::vector<double> v = t.to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] != pattern_value(int64_t(i), kind))
      return ::testing::AssertionFailure() << "element " << i << " is " << v[i] << ", expected "
                                           << pattern_value(int64_t(i), kind);
  return ::testing::AssertionSuccess();
}

// Same dtype, shape and bytes (values compared bit for bit, in logical order).
inline ::testing::AssertionResult bit_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(a.dtype()) << " vs " << dtype_name(b.dtype());
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  Tensor ca = a.contiguous(), cb = b.contiguous();
  const size_t n = size_t(a.numel()) * dtype_size(a.dtype());
  const auto* pa = static_cast<const uint8_t*>(ca.raw_data());
  const auto* pb = static_cast<const uint8_t*>(cb.raw_data());
  for (size_t i = 0; i < n; ++i)
    if (pa[i] != pb[i])
      return ::testing::AssertionFailure() << "byte " << i << " differs (" << int(pa[i]) << " vs " << int(pb[i]) << ")";
  return ::testing::AssertionSuccess();
}

inline std::string weights_fixture(const std::string& name) { return fixture_path("weights/" + name); }

inline std::vector<uint8_t> file_contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_contents(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}


}  // namespace shallow::testing

namespace shallow::testing {

// `bytes` with every occurrence of `from` replaced by `to` (same length); fails the test when
// `from` is absent.
inline std::vector<uint8_t> replaced(std::vector<uint8_t> bytes, const std::string& from, const std::string& to) {
  EXPECT_EQ(from.size(), to.size());
  auto it = std::search(bytes.begin(), bytes.end(), from.begin(), from.end());
  EXPECT_NE(it, bytes.end()) << "'" << from << "' not found";
  for (; it != bytes.end(); it = std::search(it + 1, bytes.end(), from.begin(), from.end()))
    std::copy(to.begin(), to.end(), it);
  return bytes;
}

}  // namespace shallow::testing
