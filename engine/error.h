#pragma once
// The engine's one exception type. Everything a user can get wrong (shapes, dtypes, files)
// throws shallow::Error with a message that names the op or file and what was expected.
#include <sstream>
#include <stdexcept>
#include <string>

namespace shallow {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace shallow

// SH_CHECK(cond, parts...): throws shallow::Error with the parts streamed together.
#define SH_CHECK(cond, ...)                                         \
  do {                                                              \
    if (!(cond)) throw ::shallow::Error(::shallow::str_cat(__VA_ARGS__)); \
  } while (0)
