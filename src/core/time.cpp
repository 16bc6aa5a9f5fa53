#include "core/time.hpp"

namespace switchboard::core {

namespace {

/// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (negative before 1970).
constexpr std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  // Count years from March so that the leap day is the last day of the counted year.
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t year_of_era = y - era * 400;                             // [0, 399]
  const int month_from_march = m > 2 ? m - 3 : m + 9;                         // [0, 11]
  const std::int64_t day_of_year = (153 * month_from_march + 2) / 5 + d - 1;  // [0, 365]
  const std::int64_t day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;  // [0, 146096]
  return era * 146097 + day_of_era - 719468;
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);
static_assert(days_from_civil(1969, 12, 31) == -1);

}  // namespace

int days_in_month(int year, int month) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return days[month - 1] + (month == 2 && leap ? 1 : 0);
}

rfc3339_problem parse_rfc3339(std::string_view s, rfc3339_fields& f) {
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

  f = rfc3339_fields{};
  if (!digits(0, 4, f.year) || !at(4, '-') || !digits(5, 2, f.month) || !at(7, '-') ||
      !digits(8, 2, f.day) || !(at(10, 'T') || at(10, 't')) || !digits(11, 2, f.hour) ||
      !at(13, ':') || !digits(14, 2, f.minute) || !at(16, ':') || !digits(17, 2, f.second))
    return rfc3339_problem::format;

  std::size_t pos = 19;
  if (at(pos, '.')) {
    const std::size_t first = ++pos;
    std::int64_t scale = 100000;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos) {
      f.micros += (s[pos] - '0') * scale;
      scale /= 10;  // digits past the sixth add 0: truncated, not rounded
    }
    if (pos == first)
      return rfc3339_problem::format;
  }
  if (at(pos, 'Z') || at(pos, 'z')) {
    ++pos;
  } else if (at(pos, '+') || at(pos, '-')) {
    if (!digits(pos + 1, 2, f.offset_hour) || !at(pos + 3, ':') ||
        !digits(pos + 4, 2, f.offset_minute))
      return rfc3339_problem::format;
    f.offset_sign = s[pos] == '+' ? 1 : -1;
    pos += 6;
  } else {
    return rfc3339_problem::zone_missing;
  }
  if (pos != s.size())
    return rfc3339_problem::format;

  if (f.month < 1 || f.month > 12)
    return rfc3339_problem::month;
  if (f.day < 1 || f.day > days_in_month(f.year, f.month))
    return rfc3339_problem::day;
  if (f.hour > 23)
    return rfc3339_problem::hour;
  if (f.minute > 59)
    return rfc3339_problem::minute;
  if (f.second > 60)  // RFC 3339 allows 60 for a leap second
    return rfc3339_problem::second;
  if (f.offset_hour > 23)
    return rfc3339_problem::offset_hour;
  if (f.offset_minute > 59)
    return rfc3339_problem::offset_minute;
  return rfc3339_problem::none;
}

std::optional<std::int64_t> rfc3339_to_unix_micros(std::string_view s) {
  rfc3339_fields f;
  if (parse_rfc3339(s, f) != rfc3339_problem::none)
    return std::nullopt;
  // The local time minus its offset is UTC.
  const std::int64_t offset_seconds = f.offset_sign * (f.offset_hour * 3600 + f.offset_minute * 60);
  const std::int64_t seconds = days_from_civil(f.year, f.month, f.day) * 86400 + f.hour * 3600 +
                               f.minute * 60 + f.second - offset_seconds;
  return seconds * 1000000 + f.micros;
}

std::optional<std::int64_t> rfc2822_to_unix_seconds(std::string_view s) {
  std::size_t i = 0;
  auto skip_spaces = [&] {
    while (i < s.size() && s[i] == ' ')
      ++i;
  };
  auto number = [&](int digits_min, int digits_max) -> std::optional<int> {
    int v = 0, n = 0;
    while (i < s.size() && n < digits_max && s[i] >= '0' && s[i] <= '9') {
      v = v * 10 + (s[i++] - '0');
      ++n;
    }
    return n >= digits_min ? std::optional<int>{v} : std::nullopt;
  };
  auto expect = [&](char c) {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  };
  skip_spaces();
  if (const auto comma = s.find(','); comma != std::string_view::npos && comma <= i + 3)
    i = comma + 1;  // "Thu,"
  skip_spaces();
  const auto day = number(1, 2);
  skip_spaces();
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int month = 0;
  for (int m = 0; m < 12 && month == 0; ++m)
    if (s.substr(i, 3) == months[m])
      month = m + 1;
  if (!day || month == 0)
    return std::nullopt;
  i += 3;
  skip_spaces();
  const auto year = number(4, 4);
  skip_spaces();
  const auto hour = number(2, 2);
  if (!year || !hour || !expect(':'))
    return std::nullopt;
  const auto minute = number(2, 2);
  if (!minute || !expect(':'))
    return std::nullopt;
  const auto second = number(2, 2);
  skip_spaces();
  if (!second || i >= s.size() || (s[i] != '+' && s[i] != '-'))
    return std::nullopt;
  const int sign = s[i++] == '-' ? -1 : 1;
  const auto offset = number(4, 4);
  if (!offset || i != s.size() || *day < 1 || *day > days_in_month(*year, month) || *hour > 23 ||
      *minute > 59 || *second > 60 || *offset % 100 > 59 || *offset / 100 > 23)
    return std::nullopt;
  const std::int64_t local =
      days_from_civil(*year, month, *day) * 86400 + *hour * 3600 + *minute * 60 + *second;
  return local - sign * ((*offset / 100) * 3600 + (*offset % 100) * 60);
}

}  // namespace switchboard::core
