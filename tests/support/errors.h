#pragma once
// Checking that bad input is refused with a message that says why.
#include <string>

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

}  // namespace shallow::testing

// Expects `expr` to throw a shallow::Error whose message contains `text`.
#define EXPECT_ERROR_HAS(expr, text)                                              \
  do {                                                                            \
    const std::string msg_ = ::shallow::testing::error_of([&] { (void)(expr); }); \
    EXPECT_NE(msg_.find(text), std::string::npos) << "message: '" << msg_ << "'"; \
  } while (0)
