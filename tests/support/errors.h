#pragma once
// Checking that bad input is refused with a message that says why.
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/error.h"

namespace shallow::testing {

// Runs fn and returns the message of the shallow::Error it throws ("" when it throws none).
template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Runs `read`, which must throw shallow::Error whose message contains every one of `parts`.
inline ::testing::AssertionResult throws_error(const std::function<void()>& read, std::vector<std::string> parts) {
  try {
    read();
  } catch (const Error& e) {
    const std::string what = e.what();
    for (auto& p : parts)
      if (what.find(p) == std::string::npos)
        return ::testing::AssertionFailure() << "message '" << what << "' lacks '" << p << "'";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-shallow exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

}  // namespace shallow::testing

// Expects `expr` to throw a shallow::Error whose message contains `text`.
#define EXPECT_ERROR_HAS(expr, text)                                              \
  do {                                                                            \
    const std::string msg_ = ::shallow::testing::error_of([&] { (void)(expr); }); \
    EXPECT_NE(msg_.find(text), std::string::npos) << "message: '" << msg_ << "'"; \
  } while (0)
