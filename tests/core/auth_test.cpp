#include "core/auth.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace switchboard::core;

TEST_CASE("constant_time_equal is plain equality on every input", "[auth]") {
  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("s3cret-token", "s3cret-token"));
  CHECK_FALSE(constant_time_equal("s3cret-token", "s3cret-tokeN"));
  CHECK_FALSE(constant_time_equal("s3cret-token", "S3cret-token"));
  // A prefix, or the secret with something appended, is not the secret.
  CHECK_FALSE(constant_time_equal("s3cret", "s3cret-token"));
  CHECK_FALSE(constant_time_equal("s3cret-token-and-more", "s3cret-token"));
  CHECK_FALSE(constant_time_equal("", "x"));
  // Embedded NUL bytes count: the shorter string is not padded into equality.
  CHECK_FALSE(constant_time_equal(std::string("ab\0", 3), "ab"));
  CHECK(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
}

TEST_CASE("bearer_token takes the token of an Authorization header", "[auth]") {
  CHECK(bearer_token("Bearer abc.def") == std::optional<std::string_view>("abc.def"));
  CHECK(bearer_token("bearer abc") == std::optional<std::string_view>("abc"));
  CHECK(bearer_token("BEARER   abc  ") == std::optional<std::string_view>("abc"));
  CHECK_FALSE(bearer_token(""));
  CHECK_FALSE(bearer_token("Bearer"));
  CHECK_FALSE(bearer_token("Bearer "));
  CHECK_FALSE(bearer_token("Bearerabc"));
  CHECK_FALSE(bearer_token("Basic dXNlcjpwYXNz"));
}

TEST_CASE("check_bearer tells the four cases apart", "[auth]") {
  CHECK(check_bearer("Bearer t0k", "t0k") == token_check::ok);
  CHECK(check_bearer("Bearer t0k", "") == token_check::not_configured);
  CHECK(check_bearer("", "") == token_check::not_configured);
  CHECK(check_bearer("", "t0k") == token_check::missing);
  CHECK(check_bearer("Basic t0k", "t0k") == token_check::missing);
  CHECK(check_bearer("Bearer t0", "t0k") == token_check::wrong);
  CHECK(check_bearer("Bearer t0kk", "t0k") == token_check::wrong);
}
