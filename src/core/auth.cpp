#include "core/auth.hpp"

#include <cstddef>

namespace switchboard::core {

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  // Walk the longer length in full and fold every difference in: no early exit, no branch on
  // the bytes. `volatile` keeps the compiler from turning the loop back into a memcmp.
  const std::size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept {
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size())
    return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    auto c = authorization[i];
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    if (c != scheme[i])
      return std::nullopt;
  }
  auto rest = authorization.substr(scheme.size());
  if (rest.front() != ' ' && rest.front() != '\t')
    return std::nullopt;
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
    rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t'))
    rest.remove_suffix(1);
  if (rest.empty())
    return std::nullopt;
  return rest;
}

token_check check_bearer(std::string_view authorization, std::string_view expected) noexcept {
  if (expected.empty())
    return token_check::not_configured;
  auto token = bearer_token(authorization);
  if (!token)
    return token_check::missing;
  return constant_time_equal(*token, expected) ? token_check::ok : token_check::wrong;
}

}  // namespace switchboard::core
