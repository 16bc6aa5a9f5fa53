#pragma once

// Conversions between RFC 3339 timestamps (the CloudEvents `time` attribute), RFC 2822 dates
// (Twilio's 2010-04-01 API) and Unix time.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace switchboard::core {

/// Milliseconds since 1970-01-01T00:00:00Z, now (the system clock): what durable timers and
/// idempotency windows store.
inline std::int64_t unix_millis_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// The fields of an RFC 3339 timestamp, as written (the offset not yet applied).
struct rfc3339_fields {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  std::int64_t micros = 0;  ///< fraction, truncated to microseconds
  int offset_hour = 0, offset_minute = 0;
  int offset_sign = 1;  ///< +1 east of UTC (or Z), -1 west
};

/// Why a text is not an RFC 3339 timestamp; `none` when it is one.
enum class rfc3339_problem {
  none,
  format,        ///< not shaped like 2026-11-23T14:00:00[.fff](Z|+hh:mm)
  zone_missing,  ///< shaped right up to the seconds, but no Z or +hh:mm
  month,
  day,
  hour,
  minute,
  second,
  offset_hour,
  offset_minute,  ///< out of range
};

/// Parses `text` into `out`, checking shape and ranges (days per month with leap years,
/// second 60 for a leap second, offsets up to ±23:59). The one RFC 3339 parser of switchboard:
/// the codec words its problems, `rfc3339_to_unix_micros` converts its fields.
rfc3339_problem parse_rfc3339(std::string_view text, rfc3339_fields& out);

/// The last valid day of `month` (1-12) in `year`.
int days_in_month(int year, int month);

/// Microseconds since 1970-01-01T00:00:00Z of an RFC 3339 timestamp such as
/// `2026-11-23T14:00:00Z` or `2026-11-23T14:00:00.123456+01:00`; nullopt if it is malformed.
///
/// Accepts exactly what the event codec accepts for `time`: `T`/`t` and `Z`/`z`, any number
/// of fraction digits (truncated to microseconds), offsets up to ±23:59 and second 60 (a leap
/// second, counted as the first second of the next minute).
std::optional<std::int64_t> rfc3339_to_unix_micros(std::string_view text);

/// Seconds since 1970-01-01T00:00:00Z of an RFC 2822 date as Twilio's 2010-04-01 API writes
/// them (`Thu, 24 Aug 2023 05:01:45 +0000`; the day name optional, any ±hhmm offset);
/// nullopt if it is not one.
std::optional<std::int64_t> rfc2822_to_unix_seconds(std::string_view text);

}  // namespace switchboard::core
