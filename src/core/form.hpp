#pragma once

// application/x-www-form-urlencoded bodies (Twilio's requests and webhooks): pure, no I/O.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::core {

/// The name=value pairs of a form-encoded body, in order, decoded ('+' is a space, %XX a
/// byte; a malformed escape is kept as written). Repeated names stay repeated.
inline std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body) {
  auto hex = [](char h) {
    return h >= '0' && h <= '9'   ? h - '0'
           : h >= 'a' && h <= 'f' ? h - 'a' + 10
           : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                  : -1;
  };
  auto decode = [&](std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      int hi = 0, lo = 0;
      if (c == '+') {
        out += ' ';
      } else if (c == '%' && i + 2 < text.size() && (hi = hex(text[i + 1])) >= 0 &&
                 (lo = hex(text[i + 2])) >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
      } else {
        out += c;
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  while (!body.empty()) {
    const auto amp = body.find('&');
    const auto pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    if (pair.empty())
      continue;
    const auto eq = pair.find('=');
    out.emplace_back(decode(pair.substr(0, eq)),
                     eq == std::string_view::npos ? std::string{} : decode(pair.substr(eq + 1)));
  }
  return out;
}

}  // namespace switchboard::core
