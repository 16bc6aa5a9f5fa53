#pragma once

// Event type patterns for subscriptions: `a.b.c` (exact), `a.*` (every type under `a.`),
// `*` (everything).

#include <optional>
#include <string>
#include <string_view>

namespace switchboard::core {

class type_pattern {
public:
  /// Parses a pattern; on failure returns nothing and sets `why` to a message naming the
  /// pattern and the rule it broke.
  static std::optional<type_pattern> parse(std::string_view text, std::string& why);

  bool matches(std::string_view type) const noexcept;

  const std::string& text() const noexcept { return text_; }
  bool is_exact() const noexcept { return kind_ == kind::exact; }

private:
  enum class kind { exact, prefix, all };
  type_pattern(std::string text, kind k, std::string prefix)
      : text_(std::move(text)), kind_(k), prefix_(std::move(prefix)) {}

  std::string text_;
  kind kind_;
  std::string prefix_;  // for `a.*`: "a." (with the dot)
};

}  // namespace switchboard::core
