#pragma once

// Content-Type headers as the HTTP routes check them: pure, no I/O. One reading of a media
// type for every route (events, leads, webhooks) and for AMQP content types.

#include <string>
#include <string_view>

namespace switchboard::core {

/// The media type of a Content-Type value without its parameters, trimmed and in lower case:
/// `Application/JSON; charset=utf-8` -> `application/json`; "" when there is none.
inline std::string media_type(std::string_view content_type) {
  auto t = content_type.substr(0, content_type.find(';'));
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!t.empty() && space(t.front()))
    t.remove_prefix(1);
  while (!t.empty() && space(t.back()))
    t.remove_suffix(1);
  std::string out{t};
  for (char& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

/// Whether `content_type` names the media type `expected` (lower case), whatever its
/// parameters: `application/json; charset=utf-8` is `application/json`.
inline bool has_media_type(std::string_view content_type, std::string_view expected) {
  return media_type(content_type) == expected;
}

}  // namespace switchboard::core
