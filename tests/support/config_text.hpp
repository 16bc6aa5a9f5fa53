#pragma once

// Parsing configuration text in tests: the config that must come out, or the error a user
// would see. Shared by the config tests of every section.

#include "switchboard/config.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace switchboard::testing {

/// The error a user would see for this text (the parse must fail).
inline config_error config_error_of(const std::string& text) {
  const auto result = parse_config(text, "site.json");
  INFO("config text: " << text);
  REQUIRE_FALSE(result);
  REQUIRE_FALSE(result.value.has_value());
  return result.error;
}

/// The same error as the one line a user reads.
inline std::string error_for(const std::string& text) { return config_error_of(text).message(); }

/// The configuration this text gives (the parse must succeed).
inline config parsed(const std::string& text) {
  auto result = parse_config(text, "site.json");
  INFO("config text: " << text);
  INFO("error: " << result.error.message());
  REQUIRE(result);
  return *result.value;
}

}  // namespace switchboard::testing
