#pragma once
// Fixtures made by tests/reference/*.py: one .safetensors file per test group, holding the
// inputs and PyTorch's outputs under names the tests look up.
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "engine/tensor.h"

namespace shallow::testing {

class Fixture {
 public:
  explicit Fixture(const std::string& name);  // tests/fixtures/<name>.safetensors
  bool has(const std::string& key) const { return tensors_.count(key) > 0; }
  Tensor get(const std::string& key) const;   // throws if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

std::string fixture_path(const std::string& relative);

// Max-abs and relative closeness of two tensors (any dtypes, same shape), with a message
// naming the worst element.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected,
                                     double atol = 1e-5, double rtol = 1e-4);

}  // namespace shallow::testing
