#pragma once

// The configuration file's schema machinery, shared by the generic sections and every job's:
// key rules that read a value into a `config` member, ranges with units, "did you mean" for
// unknown keys, and errors that name the key, what was wrong and what is allowed. Each
// section's own rules live with its code (core/config/config.cpp, src/jobs/*/config_rules.cpp).

#include "switchboard/config.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::core::config_schema {

/// No error, or the first one found (its `file` is filled in by the caller that knows it).
using check = std::optional<config_error>;

inline constexpr std::int64_t one_gib = std::int64_t{1024} * 1024 * 1024;
inline constexpr std::int64_t one_hour_ms = 3'600'000;
inline constexpr std::int64_t one_day_ms = 86'400'000;
inline constexpr std::int64_t one_year_ms = 365 * one_day_ms;

check fail(std::string key_path, std::string problem, std::string allowed);

// --- key paths and names --------------------------------------------------------------------

/// `http` + `port` -> `http.port`; keys that would be ambiguous in dotted form are quoted.
std::string child_path(const std::string& parent, std::string_view key);

/// Lower case with `-` read as `_`: what we compare when guessing what the user meant.
std::string normalized(std::string_view name);

/// The candidate closest to `word` within two edits (or `word` plus a unit suffix such as
/// `_ms`, the usual slip), if any.
std::optional<std::string_view> closest(std::string_view word,
                                        const std::vector<std::string_view>& candidates);

/// `'a', 'b', 'c'`
std::string quoted_list(const std::vector<std::string_view>& names);

// --- describing values ----------------------------------------------------------------------

/// `"8080" (a string)`, `70000 (an integer)`: the value as seen, and its JSON type.
std::string describe(const boost::json::value& v);

/// "an integer from 1 to 256", "a whole number of milliseconds from 0 to 3600000 (1 hour)".
std::string integer_range(std::int64_t min, std::int64_t max, std::string_view unit = {});

/// Why `host` cannot be listened on or connected to, if it cannot.
std::optional<std::string> host_problem(std::string_view host);

// --- key rules ------------------------------------------------------------------------------

using apply_fn = std::function<check(const boost::json::value&, const std::string& key_path)>;

/// One key of the file: a setting (`apply`) or a section of further keys (`keys`).
struct key_rule {
  std::string_view name;
  apply_fn apply;
  std::vector<key_rule> keys;
};

std::vector<std::string_view> names_of(const std::vector<key_rule>& rules);

/// Applies the object `v` at `path` with `rules`: the first unknown key or bad value is the
/// error. `root` is the whole file's rules, where an unknown key is looked for elsewhere
/// (`port` at the top -> "did you mean 'http.port'?").
check apply_rules(const boost::json::value& v, const std::string& path,
                  const std::vector<key_rule>& rules, const std::vector<key_rule>& root);

apply_fn integer(std::int64_t min, std::int64_t max, std::string_view unit,
                 std::function<void(std::int64_t)> set);
apply_fn count(std::int64_t min, std::int64_t max, std::size_t& target);
apply_fn bytes(std::size_t& target);  ///< 1 byte to 1 GiB
apply_fn millis(std::int64_t min, std::int64_t max, std::chrono::milliseconds& target);
apply_fn seconds(std::int64_t min, std::int64_t max, std::chrono::seconds& target);
apply_fn port_number(std::uint16_t& target);  ///< 1 to 65535
apply_fn boolean(bool& target);
apply_fn non_empty_string(std::string& target, std::string allowed);
/// A string that may be empty (an optional setting whose default is "").
apply_fn any_string(std::string& target, std::string allowed);
/// A host name or IP address; "[::1]" as in a URL is read as "::1".
apply_fn host(std::string& target);
/// "" or an http:// or https:// URL with a host.
apply_fn http_url(std::string& target, std::string allowed);

/// An array of strings, each checked by the rule `item` makes for it; `allowed` is what the
/// array holds.
apply_fn list_of(std::vector<std::string>& target, std::function<apply_fn(std::string&)> item,
                 std::string allowed);
/// An array of non-empty strings.
apply_fn string_list(std::vector<std::string>& target, std::string allowed);
/// An object of string values, order kept: `{"status": "status", "manager": "am.name"}`.
apply_fn string_pairs(std::vector<std::pair<std::string, std::string>>& target,
                      std::string allowed);

/// One of a fixed set of names.
template <class T>
apply_fn one_of(T& target, std::vector<std::pair<std::string_view, T>> choices) {
  return [&target, choices = std::move(choices)](const boost::json::value& v,
                                                 const std::string& path) -> check {
    std::vector<std::string_view> names;
    for (const auto& c : choices)
      names.push_back(c.first);
    const std::string allowed = "one of " + quoted_list(names);
    if (!v.is_string())
      return fail(path, "is " + describe(v) + ", not a string", allowed);
    const std::string_view s(v.get_string().data(), v.get_string().size());
    for (const auto& c : choices)
      if (c.first == s) {
        target = c.second;
        return std::nullopt;
      }
    std::string problem = "is " + describe(v) + ", not a known value";
    if (auto guess = closest(s, names))
      problem += "; did you mean '" + std::string(*guess) + "'?";
    return fail(path, problem, allowed);
  };
}

/// An array of sections, each an object with the keys `rules_for(element)` gives; `finish`
/// checks an element once all its keys are applied (required keys, defaults that depend on
/// other keys), seeing which keys were given.
template <class T>
apply_fn section_list(
    std::vector<T>& target, std::function<std::vector<key_rule>(T&)> rules_for,
    std::function<check(T&, const std::string& path, const boost::json::value& given)> finish,
    std::string what) {
  return [&target, rules_for = std::move(rules_for), finish = std::move(finish),
          what = std::move(what)](const boost::json::value& v, const std::string& path) -> check {
    if (!v.is_array())
      return fail(path, "is " + describe(v) + ", not an array", "an array of " + what);
    std::vector<T> out;
    for (const auto& item : v.get_array()) {
      const std::string item_path = path + "[" + std::to_string(out.size()) + "]";
      T element;
      const auto rules = rules_for(element);
      if (!item.is_object())
        return fail(item_path, "is " + describe(item) + ", not an object",
                    what + ": an object with the keys " + quoted_list(names_of(rules)));
      if (auto error = apply_rules(item, item_path, rules, rules))
        return error;
      if (auto error = finish(element, item_path, item))
        return error;
      out.push_back(std::move(element));
    }
    target = std::move(out);
    return std::nullopt;
  };
}

// --- checks after a section is applied ------------------------------------------------------

/// A required string member that is still empty after its section was applied.
check require(const std::string& value, const std::string& path, std::string_view key,
              std::string allowed);

/// The first key given twice in `items` (by `key_of`), as an error at `section[i].member`, or
/// at `section[i]` itself when `member` is "" (the items are the keys).
template <class T, class Key>
check unique_keys(const std::vector<T>& items, const std::string& section, std::string_view member,
                  Key key_of, std::string allowed) {
  for (std::size_t i = 0; i < items.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (key_of(items[i]) == key_of(items[j])) {
        const std::string item = section + "[" + std::to_string(i) + "]";
        const std::string other = section + "[" + std::to_string(j) + "]";
        const std::string repeats = member.empty()
                                        ? "the same as " + other
                                        : "the " + std::string(member) + " of " + other + " too";
        return fail(member.empty() ? item : child_path(item, member),
                    "is \"" + key_of(items[i]) + "\", " + repeats, std::move(allowed));
      }
  return std::nullopt;
}

/// The first name given twice in `items` (by `name_of`), as an error at `section[i].name`.
template <class T, class Name>
check unique_names(const std::vector<T>& items, const std::string& section, Name name_of) {
  return unique_keys(items, section, "name", name_of, "a name used once in " + section);
}

/// `section.backoff_initial_ms` at most `section.backoff_max_ms`. Either may be the default, so
/// the error names the key the user gave; `doc` is the whole file.
check backoff_order(const boost::json::value& doc, const std::string& section,
                    std::chrono::milliseconds initial_ms, std::chrono::milliseconds max_ms);

/// Secrets never come from the file (files get committed, copied and logged): the first key
/// that looks like one, with where it goes instead. The value is never echoed.
check find_secret(const boost::json::value& v, const std::string& path);

}  // namespace switchboard::core::config_schema
