#include "core/time.hpp"

namespace switchboard::core {

namespace {

/// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (negative before 1970).
constexpr std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  // Count years from March so that the leap day is the last day of the counted year.
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t year_of_era = y - era * 400;                   // [0, 399]
  const int month_from_march = m > 2 ? m - 3 : m + 9;                 // [0, 11]
  const std::int64_t day_of_year = (153 * month_from_march + 2) / 5 + d - 1;  // [0, 365]
  const std::int64_t day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;  // [0, 146096]
  return era * 146097 + day_of_era - 719468;
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);
static_assert(days_from_civil(1969, 12, 31) == -1);

}  // namespace

std::optional<std::int64_t> rfc3339_to_unix_micros(std::string_view s) {
  auto digits = [&](std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size())
      return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9')
        return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  auto at = [&](std::size_t pos, char c) { return pos < s.size() && s[pos] == c; };

  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(0, 4, year) || !at(4, '-') || !digits(5, 2, month) || !at(7, '-') ||
      !digits(8, 2, day) || !(at(10, 'T') || at(10, 't')) || !digits(11, 2, hour) ||
      !at(13, ':') || !digits(14, 2, minute) || !at(16, ':') || !digits(17, 2, second))
    return std::nullopt;

  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (at(pos, '.')) {
    const std::size_t first = ++pos;
    int scale = 100000;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos) {
      micros += (s[pos] - '0') * scale;
      scale /= 10;  // digits past the sixth add 0: truncated, not rounded
    }
    if (pos == first)
      return std::nullopt;
  }

  int offset_seconds = 0;
  if (at(pos, 'Z') || at(pos, 'z')) {
    ++pos;
  } else if (at(pos, '+') || at(pos, '-')) {
    int off_hour = 0, off_minute = 0;
    if (!digits(pos + 1, 2, off_hour) || !at(pos + 3, ':') || !digits(pos + 4, 2, off_minute) ||
        off_hour > 23 || off_minute > 59)
      return std::nullopt;
    offset_seconds = (s[pos] == '+' ? 1 : -1) * (off_hour * 3600 + off_minute * 60);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size())
    return std::nullopt;

  if (month < 1 || month > 12)
    return std::nullopt;
  static constexpr int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const int last_day = days_in_month[month - 1] + (month == 2 && leap ? 1 : 0);
  if (day < 1 || day > last_day || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;

  // The local time minus its offset is UTC.
  const std::int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 +
                               minute * 60 + second - offset_seconds;
  return seconds * 1000000 + micros;
}

}  // namespace switchboard::core
