#include "core/type_pattern.hpp"

namespace switchboard::core {

namespace {

bool is_type_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':' || c == '/';
}

}  // namespace

std::optional<type_pattern> type_pattern::parse(std::string_view text, std::string& why) {
  auto fail = [&](std::string_view rule) -> std::optional<type_pattern> {
    why = "event type pattern '" + std::string{text} + "': " + std::string{rule} +
          "; use an exact type (application.created), a prefix wildcard (application.*) or *";
    return std::nullopt;
  };
  if (text.empty())
    return fail("is empty");
  if (text == "*")
    return type_pattern{std::string{text}, kind::all, {}};
  std::string_view body = text;
  bool wildcard = false;
  if (text.size() >= 2 && text.substr(text.size() - 2) == ".*") {
    wildcard = true;
    body = text.substr(0, text.size() - 1);  // keep the dot
  }
  for (char c : body)
    if (!is_type_char(c))
      return fail(c == '*' ? "'*' may only be the whole last segment (a.*)"
                           : "contains a character other than letters, digits and . _ - : /");
  if (body.front() == '.' || (wildcard ? body.size() < 2 : body.back() == '.') ||
      body.find("..") != std::string_view::npos)
    return fail("has an empty segment");
  if (wildcard)
    return type_pattern{std::string{text}, kind::prefix, std::string{body}};
  return type_pattern{std::string{text}, kind::exact, std::string{body}};
}

bool type_pattern::matches(std::string_view type) const noexcept {
  switch (kind_) {
    case kind::all: return true;
    case kind::exact: return type == prefix_;
    case kind::prefix:
      return type.size() > prefix_.size() && type.substr(0, prefix_.size()) == prefix_;
  }
  return false;
}

}  // namespace switchboard::core
