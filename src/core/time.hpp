#pragma once

// Conversions between RFC 3339 timestamps (the CloudEvents `time` attribute) and Unix time.

#include <cstdint>
#include <optional>
#include <string_view>

namespace switchboard::core {

/// Microseconds since 1970-01-01T00:00:00Z of an RFC 3339 timestamp such as
/// `2026-11-23T14:00:00Z` or `2026-11-23T14:00:00.123456+01:00`; nullopt if it is malformed.
///
/// Accepts exactly what the event codec accepts for `time`: `T`/`t` and `Z`/`z`, any number
/// of fraction digits (truncated to microseconds), offsets up to ±23:59 and second 60 (a leap
/// second, counted as the first second of the next minute).
std::optional<std::int64_t> rfc3339_to_unix_micros(std::string_view text);

}  // namespace switchboard::core
