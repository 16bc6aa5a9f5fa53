#include "core/url.hpp"

#include <cctype>

namespace switchboard::core {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string percent_decoded(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

/// Where a URL's authority ends for redaction, from just after its "://": at its path, or, in
/// running text, at whitespace, a quote or an angle bracket. Not at '?' or '#': a password
/// written with one unencoded is hidden too.
std::size_t shown_authority_end(std::string_view text, std::size_t from) {
  std::size_t i = from;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '/' || std::isspace(c) || c == '"' || c == '<' || c == '>' || c == '\\')
      break;
    ++i;
  }
  return i;
}

}  // namespace

http_target split_http_url(std::string_view url) {
  http_target t;
  const auto scheme_end = url.find("://");
  const std::size_t host_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  auto end = url.find_first_of("/?#", host_start);
  if (end == std::string_view::npos)
    end = url.size();
  auto authority = url.substr(host_start, end - host_start);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = authority.substr(0, at);
    const auto colon = userinfo.find(':');
    t.user = percent_decoded(userinfo.substr(0, colon));
    if (colon != std::string_view::npos)
      t.password = percent_decoded(userinfo.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  t.origin = std::string{url.substr(0, host_start)} + std::string{authority};
  auto rest = url.substr(end);
  rest = rest.substr(0, rest.find('#'));
  t.target = rest.empty() || rest.front() != '/' ? "/" + std::string{rest} : std::string{rest};
  return t;
}

std::string redacted_url(std::string_view url) { return redact_urls(url); }

std::string redact_urls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for (auto sep = text.find("://"); sep != std::string_view::npos;
       sep = text.find("://", sep + 3)) {
    const auto start = sep + 3;
    const auto end = shown_authority_end(text, start);
    const auto at = text.substr(start, end - start).rfind('@');
    if (at == std::string_view::npos)
      continue;
    out.append(text.substr(copied, start - copied));
    out += "***";
    copied = start + at;  // the '@' and what follows stay
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace switchboard::core
