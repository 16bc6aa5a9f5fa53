#pragma once

// E.164 phone numbers, the only form switchboard accepts for SMS addresses: pure, no I/O.

#include <optional>
#include <string>
#include <string_view>

namespace switchboard::core {

/// Why `text` is not an E.164 number ("+" then 8 to 15 digits, the first not 0), or nothing
/// if it is one. The reason names what was wrong, e.g. "has 4 digits; E.164 numbers have 8 to
/// 15 after the '+'".
inline std::optional<std::string> e164_problem(std::string_view text) {
  if (text.empty())
    return std::string{"is empty"};
  if (text.front() != '+')
    return std::string{"does not start with '+' and a country code"};
  const auto digits = text.substr(1);
  for (char c : digits)
    if (c < '0' || c > '9')
      return std::string{
          "has a character other than a digit after the '+' (no spaces, dashes or "
          "brackets)"};
  if (digits.size() < 8 || digits.size() > 15)
    return "has " + std::to_string(digits.size()) +
           " digits; E.164 numbers have 8 to 15 after the '+'";
  if (digits.front() == '0')
    return std::string{"starts with 0 after the '+'; a country code never does"};
  return std::nullopt;
}

}  // namespace switchboard::core
