#include "tests/support/fixtures.h"

#include <cmath>

#include "weights_import/safetensors.h"

namespace shallow::testing {

std::string fixture_path(const std::string& relative) {
  return std::string(SHALLOW_FIXTURES_DIR) + "/" + relative;
}

Fixture::Fixture(const std::string& name) : path_(fixture_path(name + ".safetensors")) {
  SafetensorsFile f = read_safetensors(path_);
  for (auto& [k, t] : f.tensors) tensors_[k] = t;
  metadata_ = f.metadata;
}

Tensor Fixture::get(const std::string& key) const {
  auto it = tensors_.find(key);
  SH_CHECK(it != tensors_.end(), path_, ": no tensor named '", key, "'");
  return it->second;
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double atol,
                                     double rtol) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << shape_str(actual.shape())
                                         << " vs expected " << shape_str(expected.shape());
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::fabs(a[i] - e[i]);
    const double excess = err - (atol + rtol * std::fabs(e[i]));
    const bool nan_mismatch = std::isnan(a[i]) != std::isnan(e[i]);
    if (nan_mismatch || excess > worst) {
      worst = nan_mismatch ? INFINITY : excess;
      at = i;
    }
  }
  if (worst > 0)
    return ::testing::AssertionFailure()
           << "element " << at << " of " << a.size() << ": got " << a[at] << ", expected " << e[at]
           << " (atol " << atol << ", rtol " << rtol << ")";
  return ::testing::AssertionSuccess();
}

}  // namespace shallow::testing
