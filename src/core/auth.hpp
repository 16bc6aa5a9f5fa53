#pragma once

// Bearer-token checks for the HTTP API: pure functions, no I/O.

#include <optional>
#include <string_view>

namespace switchboard::core {

/// True if `a` and `b` are equal. The time taken depends only on the lengths, never on where
/// the first difference is, so a caller cannot find a secret one byte at a time.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive,
/// RFC 6750), or nothing if the value is not a bearer credential or the token is empty.
std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept;

/// How a presented credential compares with the configured API token.
enum class token_check {
  ok,              ///< the bearer token matches
  not_configured,  ///< the server has no token: every request is refused
  missing,         ///< no bearer credential was presented
  wrong,           ///< a bearer token was presented and it does not match
};

/// Checks an `Authorization` header value (empty when absent) against `expected` (empty when
/// no token is configured).
token_check check_bearer(std::string_view authorization, std::string_view expected) noexcept;

}  // namespace switchboard::core
