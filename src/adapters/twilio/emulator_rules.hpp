#pragma once

// The Twilio emulator's pure rules: SIDs, timestamps and durations, Sync's per-object rate limit,
// route patterns and fault drawing. No I/O, no locks; emulator*.cpp call these under their own
// locks, and tests call them directly.

#include "adapters/twilio/emulator.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::adapters::twilio::rules {

using wall_clock = std::chrono::system_clock;
using steady_clock = std::chrono::steady_clock;

// --- SIDs -----------------------------------------------------------------------------------

/// A Twilio SID: the two-letter prefix of its kind (IS, ET, CH, ...) and 32 lowercase hex digits.
inline std::string make_sid(std::string_view prefix, std::mt19937_64& rng) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string sid{prefix};
  for (int half = 0; half < 2; ++half) {
    auto bits = rng();
    for (int i = 0; i < 16; ++i, bits >>= 4)
      sid += hex[bits & 0xf];
  }
  return sid;
}

/// True if `text` has the shape of a SID with `prefix` (prefix + 32 hex digits, any case).
inline bool is_sid(std::string_view text, std::string_view prefix) {
  if (text.size() != prefix.size() + 32 || text.substr(0, prefix.size()) != prefix)
    return false;
  return std::all_of(
      text.begin() + static_cast<std::ptrdiff_t>(prefix.size()), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      });
}

// --- time -----------------------------------------------------------------------------------

/// ISO 8601 in UTC with second precision, as the v1 APIs write dates: 2026-11-23T14:00:00Z.
inline std::string iso8601(wall_clock::time_point t) {
  const std::time_t secs = wall_clock::to_time_t(t);
  std::tm utc{};
  ::gmtime_r(&secs, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

/// RFC 2822 in UTC, as the 2010-04-01 API writes dates: Thu, 24 Aug 2023 05:01:45 +0000.
inline std::string rfc2822(wall_clock::time_point t) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t secs = wall_clock::to_time_t(t);
  std::tm utc{};
  ::gmtime_r(&secs, &utc);
  char text[40];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[utc.tm_wday],
                utc.tm_mday, months[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                utc.tm_sec);
  return text;
}

/// An ISO 8601 duration as Conversations' timers take it (P[nW][nD][T[nH][nM][nS]], integer
/// parts, e.g. PT10M, P1DT12H), or nothing if it is not one.
inline std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.size() < 3 || text[0] != 'P')
    return std::nullopt;
  std::int64_t total = 0;
  bool in_time = false;
  bool any = false;
  std::int64_t number = -1;
  for (std::size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c >= '0' && c <= '9') {
      number = (number < 0 ? 0 : number) * 10 + (c - '0');
      if (number > 100LL * 365 * 24 * 3600)
        return std::nullopt;
      continue;
    }
    if (c == 'T' && !in_time && number < 0) {
      in_time = true;
      continue;
    }
    if (number < 0)
      return std::nullopt;
    std::int64_t unit = 0;
    if (!in_time && c == 'W')
      unit = 7 * 86400;
    else if (!in_time && c == 'D')
      unit = 86400;
    else if (in_time && c == 'H')
      unit = 3600;
    else if (in_time && c == 'M')
      unit = 60;
    else if (in_time && c == 'S')
      unit = 1;
    else
      return std::nullopt;
    total += number * unit;
    number = -1;
    any = true;
  }
  if (!any || number >= 0)
    return std::nullopt;
  return std::chrono::seconds{total};
}

// --- Sync's per-object rate limit -----------------------------------------------------------

/// A token bucket: `rate` tokens a second, at most `capacity` saved up. Sync allows 20 writes a
/// second per object averaged over a 10 s burst window, which is a bucket of rate 20 and
/// capacity 200: an idle object takes 200 writes at once, then 20 a second.
class token_bucket {
public:
  token_bucket(double rate, double capacity, steady_clock::time_point now)
      : rate_(rate), capacity_(capacity), tokens_(capacity), last_(now) {}

  /// Takes one token if there is one.
  bool take(steady_clock::time_point now) {
    refill(now);
    if (tokens_ < 1.0)
      return false;
    tokens_ -= 1.0;
    return true;
  }

  /// Whole seconds until the next token (at least 1), for Retry-After.
  int retry_after_s(steady_clock::time_point now) {
    refill(now);
    const double wait = rate_ > 0 ? (1.0 - tokens_) / rate_ : 1.0;
    return std::max(1, static_cast<int>(wait + 0.999));
  }

private:
  void refill(steady_clock::time_point now) {
    const std::chrono::duration<double> elapsed = now - last_;
    if (elapsed.count() > 0) {
      tokens_ = std::min(capacity_, tokens_ + elapsed.count() * rate_);
      last_ = now;
    }
  }

  double rate_;
  double capacity_;
  double tokens_;
  steady_clock::time_point last_;
};

// --- routes ---------------------------------------------------------------------------------

/// The non-empty segments of a path: "/sync/v1/Services" -> {"sync", "v1", "Services"}.
inline std::vector<std::string_view> path_segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    if (end > start)
      out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/// True if a fault rule's `route` covers a request. The route is "*" (every request) or
/// "METHOD /path/pattern" where METHOD may be "*" and each "*" segment matches one segment.
inline bool fault_route_matches(std::string_view route, std::string_view method,
                                std::string_view path) {
  if (route == "*")
    return true;
  const auto space = route.find(' ');
  if (space == std::string_view::npos)
    return false;
  const auto want_method = route.substr(0, space);
  if (want_method != "*" && want_method != method)
    return false;
  const auto want = path_segments(route.substr(space + 1));
  const auto have = path_segments(path);
  if (want.size() != have.size())
    return false;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (want[i] != "*" && want[i] != have[i])
      return false;
  return true;
}

// --- faults ---------------------------------------------------------------------------------

enum class fault_kind { none, too_many_requests, server_error, timeout };

/// A number in [0, 1) from the generator, computed the same way on every platform (unlike
/// std::uniform_real_distribution), so a seed means the same faults everywhere.
inline double unit_draw(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

/// The fault a rule gives a request, from one draw `u` in [0, 1): the rule's rates are stacked
/// in the order 429, 5xx, timeout. One draw per matching request keeps a seeded run repeatable
/// whatever the outcomes.
inline fault_kind fault_for(const fault_rule& rule, double u) {
  double edge = rule.rate_429;
  if (u < edge)
    return fault_kind::too_many_requests;
  edge += rule.rate_5xx;
  if (u < edge)
    return fault_kind::server_error;
  edge += rule.rate_timeout;
  if (u < edge)
    return fault_kind::timeout;
  return fault_kind::none;
}

}  // namespace switchboard::adapters::twilio::rules
