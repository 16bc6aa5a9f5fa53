#include "core/type_pattern.hpp"

#include <catch2/catch.hpp>

using switchboard::core::type_pattern;

namespace {
type_pattern parse_ok(const char* text) {
  std::string why;
  auto p = type_pattern::parse(text, why);
  INFO(why);
  REQUIRE(p);
  return *p;
}
std::string parse_error(const char* text) {
  std::string why;
  auto p = type_pattern::parse(text, why);
  REQUIRE_FALSE(p);
  return why;
}
}  // namespace

TEST_CASE("exact patterns match one type", "[pattern]") {
  auto p = parse_ok("application.created");
  CHECK(p.matches("application.created"));
  CHECK_FALSE(p.matches("application.created.v2"));
  CHECK_FALSE(p.matches("application"));
}

TEST_CASE("prefix wildcards match everything below the prefix", "[pattern]") {
  auto p = parse_ok("application.*");
  CHECK(p.matches("application.created"));
  CHECK(p.matches("application.status.changed"));
  CHECK_FALSE(p.matches("application."));
  CHECK_FALSE(p.matches("application"));
  CHECK_FALSE(p.matches("applications.created"));
  CHECK(parse_ok("*").matches("anything.at.all"));
}

TEST_CASE("malformed patterns are refused with the rule they broke", "[pattern]") {
  CHECK(parse_error("").find("is empty") != std::string::npos);
  CHECK(parse_error("a.*.b").find("'*' may only be the whole last segment") != std::string::npos);
  CHECK(parse_error("app*").find("'*' may only be") != std::string::npos);
  CHECK(parse_error("a..b").find("empty segment") != std::string::npos);
  CHECK(parse_error(".*").find("empty segment") != std::string::npos);
  CHECK(parse_error("a b").find("pattern 'a b'") != std::string::npos);
}
