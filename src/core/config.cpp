#include "switchboard/config.hpp"

#include "core/json_path.hpp"
#include "core/phone.hpp"
#include "core/target_mapping.hpp"
#include "core/type_pattern.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace switchboard {

std::string config_error::message() const {
  std::string out = file + ": " + key_path + ": " + problem;
  if (!allowed.empty())
    out += "; allowed: " + allowed;
  return out;
}

namespace {

namespace json = boost::json;

using check = std::optional<config_error>;

constexpr std::size_t max_config_file_bytes = std::size_t{1024} * 1024;
constexpr std::int64_t one_gib = std::int64_t{1024} * 1024 * 1024;
constexpr std::int64_t one_hour_ms = 3'600'000;
constexpr std::int64_t one_day_ms = 86'400'000;
constexpr std::int64_t one_year_ms = 365 * one_day_ms;
constexpr std::string_view command_line = "<command line>";

check fail(std::string key_path, std::string problem, std::string allowed) {
  return config_error{{}, std::move(key_path), std::move(problem), std::move(allowed)};
}

// --- key paths and names --------------------------------------------------------------------

bool is_identifier(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
}

/// `http` + `port` -> `http.port`; keys that would be ambiguous in dotted form are quoted.
std::string child_path(const std::string& parent, std::string_view key) {
  if (!is_identifier(key))
    return parent + "[" + json::serialize(json::string_view(key.data(), key.size())) + "]";
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

/// Lower case with `-` read as `_`: what we compare when guessing what the user meant.
std::string normalized(std::string_view name) {
  std::string out(name);
  for (auto& c : out)
    c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Edit distance counting a swap of two neighbours as one edit ("prot" -> "port" is 1).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i)
    d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j)
    d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

/// The candidate closest to `word` within two edits (or `word` plus a unit suffix such as
/// `_ms`, the usual slip), if any.
std::optional<std::string_view> closest(std::string_view word,
                                        const std::vector<std::string_view>& candidates) {
  if (word.size() > 64)
    return std::nullopt;  // not a typo of a short key; skip the quadratic distance
  const std::string w = normalized(word);
  std::optional<std::string_view> best;
  std::size_t best_distance = 3;
  for (auto candidate : candidates) {
    std::size_t distance = edit_distance(w, candidate);
    for (std::string_view unit : {"_ms", "_us", "_bytes"})
      if (candidate == w + std::string(unit))
        distance = std::min<std::size_t>(distance, 1);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

std::string quoted_list(const std::vector<std::string_view>& names) {
  std::string out;
  for (auto name : names) {
    if (!out.empty())
      out += ", ";
    out += "'" + std::string(name) + "'";
  }
  return out;
}

// --- describing values ----------------------------------------------------------------------

/// `"8080" (a string)`, `70000 (an integer)`: the value as seen, and its JSON type.
std::string describe(const json::value& v) {
  std::string text;
  if (v.is_double()) {
    char buffer[32];
    const auto written = std::to_chars(buffer, buffer + sizeof buffer, v.get_double());
    text.assign(buffer, written.ptr);  // "80.5", where serialize() writes "8.05E1"
  } else {
    text = json::serialize(v);
  }
  if (text.size() > 48) {
    std::size_t cut = 45;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
      --cut;  // never split a UTF-8 sequence
    text = text.substr(0, cut) + "...";
  }
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return text + " (a boolean)";
    case json::kind::int64:
    case json::kind::uint64: return text + " (an integer)";
    case json::kind::double_: return text + " (a number)";
    case json::kind::string: return text + " (a string)";
    case json::kind::array: return text + " (an array)";
    case json::kind::object: return text + " (an object)";
  }
  return text;
}

/// The value as an integer, if it is one. A number with no fraction (`1e6`) counts. Integers
/// beyond int64 saturate, which keeps them out of every range we check.
std::optional<std::int64_t> as_integer(const json::value& v) {
  constexpr auto int_max = std::numeric_limits<std::int64_t>::max();
  constexpr auto int_min = std::numeric_limits<std::int64_t>::min();
  if (v.is_int64())
    return v.get_int64();
  if (v.is_uint64())
    return v.get_uint64() > static_cast<std::uint64_t>(int_max) ? int_max
                                                                : static_cast<std::int64_t>(v.get_uint64());
  if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d) || d != std::floor(d))
      return std::nullopt;
    if (d >= 9.2e18)
      return int_max;
    if (d <= -9.2e18)
      return int_min;
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::string with_unit_name(std::int64_t n, std::string_view unit) {
  std::string out = std::to_string(n);
  if (unit == "bytes" && n == one_gib)
    out += " (1 GiB)";
  else if (unit == "milliseconds" && n == one_hour_ms)
    out += " (1 hour)";
  else if (unit == "milliseconds" && n == one_day_ms)
    out += " (1 day)";
  else if (unit == "milliseconds" && n == one_year_ms)
    out += " (365 days)";
  else if (unit == "microseconds" && n == 1'000'000)
    out += " (1 second)";
  return out;
}

/// "an integer from 1 to 256", "a whole number of milliseconds from 0 to 3600000 (1 hour)".
std::string integer_range(std::int64_t min, std::int64_t max, std::string_view unit = {}) {
  if (unit.empty())
    return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  return "a whole number of " + std::string(unit) + " from " + with_unit_name(min, unit) + " to " +
         with_unit_name(max, unit);
}

/// Why `host` cannot be listened on, if it cannot.
std::optional<std::string> host_problem(std::string_view host) {
  if (host.empty())
    return "is empty";
  if (host.size() > 253)
    return "is longer than 253 characters";
  if (std::any_of(host.begin(), host.end(),
                  [](unsigned char c) { return std::isspace(c) || std::iscntrl(c) || c == '/'; }))
    return "contains whitespace or '/'";
  if (std::count(host.begin(), host.end(), ':') == 1)
    return "contains a port";  // more than one ':' is an IPv6 address
  return std::nullopt;
}

// --- the schema -----------------------------------------------------------------------------

using apply_fn = std::function<check(const json::value&, const std::string& key_path)>;

/// One key of the file: a setting (`apply`) or a section of further keys (`keys`).
struct key_rule {
  std::string_view name;
  apply_fn apply;
  std::vector<key_rule> keys;
};

apply_fn integer(std::int64_t min, std::int64_t max, std::string_view unit,
                 std::function<void(std::int64_t)> set) {
  return [min, max, unit, set = std::move(set)](const json::value& v, const std::string& path) -> check {
    const std::string allowed = integer_range(min, max, unit);
    const auto n = as_integer(v);
    if (!n)
      return fail(path, "is " + describe(v) + ", not " + (v.is_number() ? "a whole number" : "an integer"),
                  allowed);
    if (*n < min || *n > max)
      return fail(path, "is " + describe(v) + ", out of range", allowed);
    set(*n);
    return std::nullopt;
  };
}

apply_fn count(std::int64_t min, std::int64_t max, std::size_t& target) {
  return integer(min, max, {}, [&target](std::int64_t n) { target = static_cast<std::size_t>(n); });
}

apply_fn bytes(std::size_t& target) {
  return integer(1, one_gib, "bytes", [&target](std::int64_t n) { target = static_cast<std::size_t>(n); });
}

apply_fn millis(std::int64_t min, std::int64_t max, std::chrono::milliseconds& target) {
  return integer(min, max, "milliseconds",
                 [&target](std::int64_t n) { target = std::chrono::milliseconds{n}; });
}

apply_fn boolean(bool& target) {
  return [&target](const json::value& v, const std::string& path) -> check {
    if (!v.is_bool())
      return fail(path, "is " + describe(v) + ", not a boolean", "true or false (without quotes)");
    target = v.get_bool();
    return std::nullopt;
  };
}

apply_fn non_empty_string(std::string& target, std::string allowed) {
  return [&target, allowed = std::move(allowed)](const json::value& v, const std::string& path) -> check {
    if (!v.is_string())
      return fail(path, "is " + describe(v) + ", not a string", allowed);
    const auto& s = v.get_string();
    if (s.empty())
      return fail(path, "is \"\" (an empty string)", allowed);
    if (s.size() > 4096 || std::find(s.begin(), s.end(), '\0') != s.end())
      return fail(path, "is " + describe(v) + ", too long or containing a NUL character", allowed);
    target.assign(s.data(), s.size());
    return std::nullopt;
  };
}

apply_fn host(std::string& target) {
  return [&target](const json::value& v, const std::string& path) -> check {
    const std::string allowed =
        "a host name or IP address such as \"127.0.0.1\", \"0.0.0.0\" or \"::1\" (the port goes in "
        "http.port)";
    if (!v.is_string())
      return fail(path, "is " + describe(v) + ", not a string", allowed);
    std::string_view h(v.get_string().data(), v.get_string().size());
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
      h = h.substr(1, h.size() - 2);  // "[::1]" as in a URL means "::1"
    if (h.find("://") != std::string_view::npos)
      return fail(path, "is " + describe(v) + ", a URL rather than a host", allowed);
    if (auto why = host_problem(h))
      return fail(path, "is " + describe(v) + ", which " + *why, allowed);
    target.assign(h);
    return std::nullopt;
  };
}

apply_fn log_level(std::string& target) {
  return [&target](const json::value& v, const std::string& path) -> check {
    static const std::vector<std::string_view> levels{"trace", "debug", "info", "warn",
                                                      "error", "critical", "off"};
    const std::string allowed = "one of " + quoted_list(levels);
    if (!v.is_string())
      return fail(path, "is " + describe(v) + ", not a string", allowed);
    const std::string_view s(v.get_string().data(), v.get_string().size());
    if (std::find(levels.begin(), levels.end(), s) != levels.end()) {
      target.assign(s);
      return std::nullopt;
    }
    std::string problem = "is " + describe(v) + ", not a log level";
    if (auto guess = closest(s, levels))
      problem += "; did you mean '" + std::string(*guess) + "'?";
    return fail(path, problem, allowed);
  };
}

apply_fn port_number(std::uint16_t& target) {
  return integer(1, 65535, {}, [&target](std::int64_t n) { target = static_cast<std::uint16_t>(n); });
}

apply_fn seconds(std::int64_t min, std::int64_t max, std::chrono::seconds& target) {
  return integer(min, max, "seconds", [&target](std::int64_t n) { target = std::chrono::seconds{n}; });
}

/// A string that may be empty (an optional setting whose default is "").
apply_fn any_string(std::string& target, std::string allowed) {
  return [&target, allowed = std::move(allowed)](const json::value& v, const std::string& path) -> check {
    if (!v.is_string())
      return fail(path, "is " + describe(v) + ", not a string", allowed);
    const auto& s = v.get_string();
    if (s.size() > 65536 || std::find(s.begin(), s.end(), '\0') != s.end())
      return fail(path, "is " + describe(v) + ", too long or containing a NUL character", allowed);
    target.assign(s.data(), s.size());
    return std::nullopt;
  };
}

/// An array of strings, each checked by the rule `item` makes for it; `allowed` is what the
/// array holds.
apply_fn list_of(std::vector<std::string>& target, std::function<apply_fn(std::string&)> item,
                 std::string allowed) {
  return [&target, item = std::move(item), allowed = std::move(allowed)](const json::value& v,
                                                                        const std::string& path) -> check {
    if (!v.is_array())
      return fail(path, "is " + describe(v) + ", not an array", allowed);
    std::vector<std::string> out;
    for (const auto& element : v.get_array()) {
      const std::string item_path = path + "[" + std::to_string(out.size()) + "]";
      std::string s;
      if (auto error = item(s)(element, item_path))
        return error;
      out.push_back(std::move(s));
    }
    target = std::move(out);
    return std::nullopt;
  };
}

/// An array of non-empty strings.
apply_fn string_list(std::vector<std::string>& target, std::string allowed) {
  return list_of(
      target, [allowed](std::string& s) { return non_empty_string(s, allowed); }, allowed);
}

/// An object of string values, order kept: `{"status": "status", "manager": "am.name"}`.
apply_fn string_pairs(std::vector<std::pair<std::string, std::string>>& target, std::string allowed) {
  return [&target, allowed = std::move(allowed)](const json::value& v, const std::string& path) -> check {
    if (!v.is_object())
      return fail(path, "is " + describe(v) + ", not an object", allowed);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& member : v.get_object()) {
      const std::string_view key(member.key().data(), member.key().size());
      const std::string member_path = child_path(path, key);
      if (key.empty())
        return fail(member_path, "is an empty field name", allowed);
      std::string s;
      if (auto error = non_empty_string(s, allowed)(member.value(), member_path))
        return error;
      out.emplace_back(std::string(key), std::move(s));
    }
    target = std::move(out);
    return std::nullopt;
  };
}

/// One of a fixed set of names.
template <class T>
apply_fn one_of(T& target, std::vector<std::pair<std::string_view, T>> choices) {
  return [&target, choices = std::move(choices)](const json::value& v, const std::string& path) -> check {
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

check apply_rules(const json::value& v, const std::string& path, const std::vector<key_rule>& rules,
                  const std::vector<key_rule>& root);
std::vector<std::string_view> names_of(const std::vector<key_rule>& rules);

/// An array of sections, each an object with the keys `rules_for(element)` gives; `finish`
/// checks an element once all its keys are applied (required keys, defaults that depend on
/// other keys), seeing which keys were given.
template <class T>
apply_fn section_list(std::vector<T>& target, std::function<std::vector<key_rule>(T&)> rules_for,
                      std::function<check(T&, const std::string& path, const json::value& given)> finish,
                      std::string what) {
  return [&target, rules_for = std::move(rules_for), finish = std::move(finish),
          what = std::move(what)](const json::value& v, const std::string& path) -> check {
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

/// A required string member that is still empty after its section was applied.
check require(const std::string& value, const std::string& path, std::string_view key,
              std::string allowed) {
  if (!value.empty())
    return std::nullopt;
  return fail(child_path(path, key), "is missing", std::move(allowed));
}

/// The first key given twice in `items` (by `key_of`), as an error at `section[i].member`, or
/// at `section[i]` itself when `member` is "" (the items are the keys).
template <class T, class Key>
check unique_keys(const std::vector<T>& items, const std::string& section, std::string_view member, Key key_of,
                  std::string allowed) {
  for (std::size_t i = 0; i < items.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (key_of(items[i]) == key_of(items[j])) {
        const std::string item = section + "[" + std::to_string(i) + "]";
        const std::string other = section + "[" + std::to_string(j) + "]";
        const std::string repeats =
            member.empty() ? "the same as " + other : "the " + std::string(member) + " of " + other + " too";
        return fail(member.empty() ? item : child_path(item, member), "is \"" + key_of(items[i]) + "\", " + repeats,
                    std::move(allowed));
      }
  return std::nullopt;
}

/// The first name given twice in `items` (by `name_of`), as an error at `section[i].name`.
template <class T, class Name>
check unique_names(const std::vector<T>& items, const std::string& section, Name name_of) {
  return unique_keys(items, section, "name", name_of, "a name used once in " + section);
}

check dotted_path_check(const std::string& dotted, const std::string& path) {
  if (dotted.front() == '.' || dotted.back() == '.' || dotted.find("..") != std::string::npos)
    return fail(path, "is \"" + dotted + "\", not a dotted path",
                "member names joined by '.', e.g. \"applicationId\" or \"applicant.phone\"");
  return std::nullopt;
}

// --- entity-state propagation sections -------------------------------------------------------

std::vector<key_rule> message_mapping_rules(amqp_message_mapping& m) {
  return {
      {"message_type", non_empty_string(m.message_type, "a MassTransit message URN, e.g. "
                                                        "\"urn:message:Crm.Events:ApplicationStatusChanged\""),
       {}},
      {"event_type", non_empty_string(m.event_type, "a switchboard event type, e.g. \"application.status_changed\""),
       {}},
      {"entity_kind", non_empty_string(m.entity_kind, "an entity kind, e.g. \"application\""), {}},
      {"entity_id_field", non_empty_string(m.entity_id_field, "a dotted path in the message, e.g. \"applicationId\""),
       {}},
      {"entity_version_field",
       any_string(m.entity_version_field, "a dotted path in the message holding a non-negative integer, or \"\""),
       {}},
  };
}

check finish_message_mapping(amqp_message_mapping& m, const std::string& path, const json::value&) {
  const std::string example = "see config/crm-state-sync.json for an example";
  for (auto [value, key] : {std::pair{&m.message_type, "message_type"}, std::pair{&m.event_type, "event_type"},
                            std::pair{&m.entity_kind, "entity_kind"}, std::pair{&m.entity_id_field, "entity_id_field"}})
    if (auto error = require(*value, path, key, example))
      return error;
  if (auto error = dotted_path_check(m.entity_id_field, child_path(path, "entity_id_field")))
    return error;
  if (!m.entity_version_field.empty())
    if (auto error = dotted_path_check(m.entity_version_field, child_path(path, "entity_version_field")))
      return error;
  return std::nullopt;
}

std::vector<key_rule> amqp_source_rules(amqp_source_config& a) {
  return {
      {"name", non_empty_string(a.name, "a unique name for this source, e.g. \"crm\""), {}},
      {"host", host(a.host), {}},
      {"port", port_number(a.port), {}},
      {"vhost", non_empty_string(a.vhost, "a RabbitMQ virtual host, e.g. \"/\""), {}},
      {"username", non_empty_string(a.username, "a RabbitMQ user name (the password comes from "
                                                "SWITCHBOARD_AMQP_PASSWORD)"),
       {}},
      {"queue", non_empty_string(a.queue, "the durable queue to consume, e.g. \"switchboard.crm\""), {}},
      {"exchanges", string_list(a.exchanges, "fan-out exchange names, e.g. \"Crm.Events:ApplicationStatusChanged\""),
       {}},
      {"declare", boolean(a.declare), {}},
      {"error_queue", any_string(a.error_queue, "a queue name; \"\" means the queue's name + \"_error\""), {}},
      {"prefetch", integer(1, 65535, {}, [&a](std::int64_t n) { a.prefetch = static_cast<std::uint16_t>(n); }),
       {}},
      {"heartbeat_s", seconds(0, 3600, a.heartbeat), {}},
      {"reconnect_initial_ms", millis(1, one_hour_ms, a.reconnect_initial), {}},
      {"reconnect_max_ms", millis(1, one_hour_ms, a.reconnect_max), {}},
      {"event_source", any_string(a.event_source, "a CloudEvents source, e.g. \"crm/rabbitmq\"; \"\" means "
                                                  "\"amqp/\" + queue"),
       {}},
      {"messages",
       section_list<amqp_message_mapping>(a.messages, message_mapping_rules, finish_message_mapping,
                                          "message mappings"),
       {}},
  };
}

check finish_amqp_source(amqp_source_config& a, const std::string& path, const json::value&) {
  if (auto error = require(a.name, path, "name", "a unique name for this source, e.g. \"crm\""))
    return error;
  if (auto error = require(a.queue, path, "queue", "the durable queue to consume, e.g. \"switchboard.crm\""))
    return error;
  if (a.messages.empty())
    return fail(child_path(path, "messages"), "is missing or empty",
                "at least one mapping from a MassTransit message type to an event type and entity");
  if (a.reconnect_initial > a.reconnect_max)
    return fail(child_path(path, "reconnect_initial_ms"),
                "is " + std::to_string(a.reconnect_initial.count()) + ", larger than reconnect_max_ms (" +
                    std::to_string(a.reconnect_max.count()) + ")",
                "at most reconnect_max_ms");
  if (a.error_queue.empty())
    a.error_queue = a.queue + "_error";
  if (a.error_queue == a.queue)
    return fail(child_path(path, "error_queue"), "is the consumed queue itself, so bad messages would loop",
                "another queue, e.g. \"" + a.queue + "_error\"");
  if (a.event_source.empty())
    a.event_source = "amqp/" + a.queue;
  return std::nullopt;
}

std::vector<key_rule> lookup_rules(lookup_config& l) {
  return {
      {"name", non_empty_string(l.name, "a unique name, e.g. \"account_manager\""), {}},
      {"entity_kind", non_empty_string(l.entity_kind, "the entity kind it enriches, e.g. \"application\""), {}},
      {"sql", non_empty_string(l.sql, "one SELECT with ? placeholders, e.g. \"SELECT name, phone FROM "
                                      "account_managers WHERE id = ?\""),
       {}},
      {"params", string_list(l.params, "dotted state paths bound to the ? placeholders, in order"), {}},
      {"into", non_empty_string(l.into, "the state field that receives the row, e.g. \"accountManager\""), {}},
      {"invalidated_by", any_string(l.invalidated_by, "an event type, e.g. \"account_manager.updated\""), {}},
      {"invalidation_keys",
       string_list(l.invalidation_keys, "dotted paths in the invalidating event's data, one per param"), {}},
  };
}

check finish_lookup(lookup_config& l, const std::string& path, const json::value&) {
  for (auto [value, key, allowed] :
       {std::tuple{&l.name, "name", "a unique name, e.g. \"account_manager\""},
        std::tuple{&l.entity_kind, "entity_kind", "the entity kind it enriches"},
        std::tuple{&l.sql, "sql", "one SELECT with ? placeholders"},
        std::tuple{&l.into, "into", "the state field that receives the row"}})
    if (auto error = require(*value, path, key, allowed))
      return error;
  for (std::size_t i = 0; i < l.params.size(); ++i)
    if (auto error = dotted_path_check(l.params[i], child_path(path, "params") + "[" + std::to_string(i) + "]"))
      return error;
  if (!l.invalidated_by.empty() && l.invalidation_keys.size() != l.params.size())
    return fail(child_path(path, "invalidation_keys"),
                "has " + std::to_string(l.invalidation_keys.size()) + " paths but params has " +
                    std::to_string(l.params.size()),
                "one path per param: where the invalidating event's data holds each parameter");
  if (l.invalidated_by.empty() && !l.invalidation_keys.empty())
    return fail(child_path(path, "invalidation_keys"), "is given without invalidated_by",
                "set invalidated_by to the event type that changes the looked-up row");
  return std::nullopt;
}

std::vector<key_rule> target_rules(target_config& t) {
  using k = target_config::kind;
  return {
      {"name", non_empty_string(t.name, "a unique name, e.g. \"application-docs\""), {}},
      {"type",
       one_of<k>(t.type, {{"sync_document", k::sync_document},
                          {"sync_map_item", k::sync_map_item},
                          {"taskrouter_worker", k::taskrouter_worker}}),
       {}},
      {"entity_kind", non_empty_string(t.entity_kind, "the entity kind written here, e.g. \"application\""), {}},
      {"service", non_empty_string(t.service, "a Sync service SID, e.g. \"IS0123...\""), {}},
      {"document", non_empty_string(t.document, "a document name template, e.g. \"application-{id}\""), {}},
      {"map", non_empty_string(t.map, "a Sync map unique name, e.g. \"applications\""), {}},
      {"key", non_empty_string(t.key, "a map item key template, e.g. \"{id}\""), {}},
      {"workspace", non_empty_string(t.workspace, "a TaskRouter workspace SID, e.g. \"WS0123...\""), {}},
      {"worker", non_empty_string(t.worker, "a worker SID template, e.g. \"{workerSid}\""), {}},
      {"fields", string_pairs(t.fields, "output field -> dotted state path, e.g. {\"status\": \"status\"}"), {}},
      {"concurrency", count(1, 64, t.concurrency), {}},
      {"min_interval_ms", millis(0, one_hour_ms, t.min_interval), {}},
      {"max_attempts", count(1, 1000, t.max_attempts), {}},
      {"backoff_initial_ms", millis(1, one_hour_ms, t.backoff_initial), {}},
      {"backoff_max_ms", millis(1, one_hour_ms, t.backoff_max), {}},
  };
}

check finish_target(target_config& t, const std::string& path, const json::value& given) {
  using k = target_config::kind;
  const auto& obj = given.get_object();
  if (!obj.contains("type"))
    return fail(child_path(path, "type"), "is missing",
                "one of 'sync_document', 'sync_map_item', 'taskrouter_worker'");
  if (auto error = require(t.name, path, "name", "a unique name, e.g. \"application-docs\""))
    return error;
  if (auto error = require(t.entity_kind, path, "entity_kind", "the entity kind written here"))
    return error;
  // Members that belong to another kind of target are mistakes worth naming.
  std::vector<std::string_view> needed;
  std::vector<std::string_view> foreign;
  switch (t.type) {
    case k::sync_document:
      needed = {"service", "document"};
      foreign = {"map", "key", "workspace", "worker"};
      break;
    case k::sync_map_item:
      needed = {"service", "map"};
      foreign = {"document", "workspace", "worker"};
      break;
    case k::taskrouter_worker:
      needed = {"workspace", "worker"};
      foreign = {"service", "document", "map", "key"};
      break;
  }
  const std::string type_name(obj.at("type").get_string().data(), obj.at("type").get_string().size());
  for (auto key : needed)
    if (!obj.contains(json::string_view(key.data(), key.size())))
      return fail(child_path(path, key), "is missing", "required for a target of type '" + type_name + "'");
  for (auto key : foreign)
    if (obj.contains(json::string_view(key.data(), key.size())))
      return fail(child_path(path, key), "does not apply to a target of type '" + type_name + "'",
                  "the keys of that type only: " + quoted_list(needed) + " and the common ones");
  // What a target means (templates, fields, limits) is checked by the same code that checks
  // a target built in a host program: core::target_problem. Here only its key names change
  // to the file's (`min_interval_ms`, `fields.<name>`).
  if (auto p = core::target_problem(t)) {
    std::string key = p->key;
    if (key == "min_interval" || key == "backoff_initial" || key == "backoff_max")
      key += "_ms";
    std::string key_path = child_path(path, key);
    if (key.rfind("fields[", 0) == 0) {
      const auto i = static_cast<std::size_t>(std::stoul(key.substr(7)));
      if (i < t.fields.size())
        key_path = child_path(child_path(path, "fields"), t.fields[i].first);
    }
    return fail(key_path, p->problem, p->allowed);
  }
  return std::nullopt;
}

/// "" or an http:// or https:// URL with a host.
apply_fn http_url(std::string& target, std::string allowed) {
  return [&target, allowed = std::move(allowed)](const json::value& v, const std::string& path) -> check {
    std::string s;
    if (auto error = any_string(s, allowed)(v, path))
      return error;
    if (s.empty()) {
      target.clear();
      return std::nullopt;
    }
    const std::size_t scheme_end = s.rfind("http://", 0) == 0 ? 7 : s.rfind("https://", 0) == 0 ? 8 : 0;
    if (scheme_end == 0)
      return fail(path, "is " + describe(v) + ", not an http(s) URL", allowed);
    if (std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); }))
      return fail(path, "is " + describe(v) + ", a URL with whitespace or control characters", allowed);
    if (scheme_end == s.size() || std::string_view("/?#").find(s[scheme_end]) != std::string_view::npos)
      return fail(path, "is " + describe(v) + ", a URL without a host", allowed);
    target = std::move(s);
    return std::nullopt;
  };
}

apply_fn base_url(std::string& target) {
  return http_url(target, "\"\" for Twilio's own hosts, or http(s)://HOST[:PORT] of a switchboard Twilio "
                          "emulator, e.g. \"http://127.0.0.1:8089\"");
}

// --- lead conversations and form leads ------------------------------------------------------

const std::string e164_allowed =
    "an E.164 phone number: '+', the country code and the number, digits only, e.g. \"+15550001111\"";

/// A phone number in E.164 form, the only form Twilio takes for SMS addresses.
apply_fn phone(std::string& target) {
  return [&target](const json::value& v, const std::string& path) -> check {
    if (!v.is_string())
      return fail(path, "is " + describe(v) + ", not a string", e164_allowed);
    const std::string_view s(v.get_string().data(), v.get_string().size());
    if (auto why = core::e164_problem(s))
      return fail(path, "is " + describe(v) + ", which " + *why, e164_allowed);
    target.assign(s);
    return std::nullopt;
  };
}

/// A dealer or location id: it appears in URL paths (`/v1/dealers/{id}/...`), so only
/// characters that never need escaping, and never a path step of its own ("." or "..").
apply_fn url_id(std::string& target, std::string example) {
  return [&target, example = std::move(example)](const json::value& v, const std::string& path) -> check {
    const std::string allowed = "letters, digits, '_', '.' and '-' (the id appears in URL paths), e.g. " + example;
    std::string s;
    if (auto error = non_empty_string(s, allowed)(v, path))
      return error;
    const auto bad = std::find_if(s.begin(), s.end(), [](char c) {
      return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '.' || c == '-');
    });
    if (bad != s.end()) {
      const auto u = static_cast<unsigned char>(*bad);
      const std::string shown =
          u >= 0x20 && u < 0x7F ? "'" + std::string(1, *bad) + "'" : "byte " + std::to_string(u);
      return fail(path, "is " + describe(v) + ", which has the character " + shown, allowed);
    }
    if (s == "." || s == "..")
      return fail(path, "is " + describe(v) + ", which a URL path reads as a directory step", allowed);
    target = std::move(s);
    return std::nullopt;
  };
}

/// A lead message template: text with the placeholders below ({{ and }} are literal braces,
/// as in target templates).
apply_fn lead_template(std::string& target) {
  return [&target](const json::value& v, const std::string& path) -> check {
    static const std::vector<std::string_view> placeholders{"customer_name", "customer_phone", "message",
                                                            "dealer_name",   "location_name",  "lead_id"};
    std::string list;
    for (auto p : placeholders)
      list += (list.empty() ? "{" : ", {") + std::string(p) + "}";
    const std::string allowed = "non-empty text with the placeholders " + list;
    std::string s;
    if (auto error = non_empty_string(s, allowed)(v, path))
      return error;
    if (auto why = core::template_problem(s))
      return fail(path, "is " + describe(v) + ", which " + *why, allowed);
    // The syntax is sound, so every single '{' opens a placeholder that a '}' closes.
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '{' && s[i] != '}')
        continue;
      if (i + 1 < s.size() && s[i + 1] == s[i]) {
        ++i;
        continue;
      }
      const auto end = s.find('}', i);
      const std::string_view name(s.data() + i + 1, end - i - 1);
      if (std::find(placeholders.begin(), placeholders.end(), name) == placeholders.end()) {
        std::string problem = "has the unknown placeholder '{" + std::string(name) + "}'";
        if (auto guess = closest(name, placeholders))
          problem += "; did you mean '{" + std::string(*guess) + "}'?";
        return fail(path, problem, allowed);
      }
      i = end;
    }
    target = std::move(s);
    return std::nullopt;
  };
}

std::vector<key_rule> location_rules(location_config& l) {
  return {
      {"id", url_id(l.id, "\"north\""), {}},
      {"name", non_empty_string(l.name, "the location's name, e.g. \"North Branch\""), {}},
      {"phone", phone(l.phone), {}},
  };
}

check finish_location(location_config& l, const std::string& path, const json::value&) {
  if (auto error = require(l.id, path, "id", "an id unique within the dealer, e.g. \"north\""))
    return error;
  return require(l.phone, path, "phone", "the location's " + e164_allowed);
}

std::vector<key_rule> dealer_rules(dealer_config& d) {
  return {
      {"id", url_id(d.id, "\"acme-motors\""), {}},
      {"name", non_empty_string(d.name, "the dealer's name, e.g. \"Acme Motors\""), {}},
      {"locations",
       section_list<location_config>(d.locations, location_rules, finish_location,
                                     "locations (each with an id, a name and a phone)"),
       {}},
  };
}

check finish_dealer(dealer_config& d, const std::string& path, const json::value&) {
  if (auto error = require(d.id, path, "id", "a unique id, e.g. \"acme-motors\""))
    return error;
  return unique_keys(d.locations, child_path(path, "locations"), "id",
                     [](const location_config& l) { return l.id; }, "an id used once within the dealer");
}

std::vector<key_rule> leads_rules(leads_config& l) {
  return {
      {"proxy_numbers", list_of(l.proxy_numbers, phone, "an array of E.164 phone numbers, e.g. [\"+15550001111\"]"),
       {}},
      {"webhook_url",
       http_url(l.webhook_url, "\"\" (no conversation webhook is registered), or the http(s) URL Twilio calls with "
                               "conversation events, exactly as Twilio calls it, e.g. "
                               "\"https://switchboard.example.com/v1/webhooks/twilio/conversations\""),
       {}},
      {"first_message", lead_template(l.first_message), {}},
      {"reminder_message", lead_template(l.reminder_message), {}},
      {"reminder_after_ms", millis(0, one_day_ms, l.reminder_after), {}},
      {"close_inactive_after_ms", millis(0, one_year_ms, l.close_inactive_after), {}},
      {"max_message_chars", count(1, 1600, l.max_message_chars), {}},
      {"workers", count(1, 64, l.workers), {}},
      {"max_attempts", count(1, 1000, l.max_attempts), {}},
      {"backoff_initial_ms", millis(1, one_hour_ms, l.backoff_initial), {}},
      {"backoff_max_ms", millis(1, one_hour_ms, l.backoff_max), {}},
      {"answer_timeout_ms", millis(0, 600'000, l.answer_timeout), {}},
      {"passivate_after_ms", millis(1, one_day_ms, l.passivate_after), {}},
      {"dealers",
       section_list<dealer_config>(l.dealers, dealer_rules, finish_dealer,
                                   "dealers (each with an id, a name and locations)"),
       {}},
  };
}

std::vector<key_rule> form_leads_rules(form_leads_config& f) {
  return {
      {"lead_tracking_url",
       http_url(f.lead_tracking_url, "\"\" (not forwarded), or the http(s) URL form leads are POSTed to, e.g. "
                                     "\"https://tracking.example.com/leads\""),
       {}},
      {"marketing_url",
       http_url(f.marketing_url, "\"\" (not forwarded), or the http(s) URL form leads are POSTed to, e.g. "
                                 "\"https://marketing.example.com/leads\""),
       {}},
      {"max_attempts", count(1, 1000, f.max_attempts), {}},
      {"backoff_initial_ms", millis(1, one_hour_ms, f.backoff_initial), {}},
      {"backoff_max_ms", millis(1, one_hour_ms, f.backoff_max), {}},
      {"timeout_ms", millis(1, one_hour_ms, f.timeout), {}},
  };
}

/// The whole file, with setters that write into `cfg`. Upper bounds are sanity limits: big
/// enough for any real deployment, small enough to catch a slipped digit.
std::vector<key_rule> schema(config& cfg) {
  auto& h = cfg.http;
  auto& l = cfg.limits;
  auto& s = cfg.supervision;
  return {
      {"data_dir", non_empty_string(cfg.data_dir, "a non-empty directory path, e.g. \"./data\""), {}},
      {"http",
       {},
       {
           {"enabled", boolean(h.enabled), {}},
           {"host", host(h.host), {}},
           {"port", integer(0, 65535, {}, [&h](std::int64_t n) { h.port = static_cast<std::uint16_t>(n); }),
            {}},
           {"max_body_bytes", bytes(h.max_body_bytes), {}},
           {"keep_alive_max_count", count(1, 10'000'000, h.keep_alive_max_count), {}},
           {"read_timeout_ms", millis(1, one_hour_ms, h.read_timeout), {}},
           {"write_timeout_ms", millis(1, one_hour_ms, h.write_timeout), {}},
           {"worker_threads", count(1, 1024, h.worker_threads), {}},
       }},
      {"scheduler",
       {},
       {
           {"max_threads", count(1, 256, cfg.scheduler.max_threads), {}},
           {"moderate_sleep_us", integer(0, 1'000'000, "microseconds",
                                         [&cfg](std::int64_t n) {
                                           cfg.scheduler.moderate_sleep = std::chrono::microseconds{n};
                                         }),
            {}},
       }},
      {"log", {}, {{"level", log_level(cfg.log.level), {}}}},
      {"supervision",
       {},
       {
           {"max_restarts", count(0, 1000, s.max_restarts), {}},
           {"within_ms", millis(1, one_day_ms, s.within), {}},
           {"backoff_initial_ms", millis(0, one_hour_ms, s.backoff_initial), {}},
           {"backoff_max_ms", millis(0, one_hour_ms, s.backoff_max), {}},
       }},
      {"limits",
       {},
       {
           {"max_event_bytes", bytes(l.max_event_bytes), {}},
           {"max_depth", count(1, 256, l.max_depth), {}},
           {"max_string_bytes", bytes(l.max_string_bytes), {}},
           {"max_attribute_bytes", bytes(l.max_attribute_bytes), {}},
           {"max_batch_events", count(1, 1'000'000, l.max_batch_events), {}},
           {"max_batch_bytes", bytes(l.max_batch_bytes), {}},
       }},
      {"drain_timeout_ms", millis(0, one_hour_ms, cfg.drain_timeout), {}},
      {"sources",
       {},
       {
           {"amqp", section_list<amqp_source_config>(cfg.amqp_sources, amqp_source_rules, finish_amqp_source,
                                                     "RabbitMQ sources"),
            {}},
       }},
      {"enrichment",
       {},
       {
           {"database", non_empty_string(cfg.enrichment.database, "the path of a SQLite database file"), {}},
           {"cache_ttl_ms", millis(0, one_day_ms, cfg.enrichment.cache_ttl), {}},
           {"cache_max_entries", count(0, 100'000'000, cfg.enrichment.cache_max_entries), {}},
           {"lookups", section_list<lookup_config>(cfg.enrichment.lookups, lookup_rules, finish_lookup, "lookups"),
            {}},
       }},
      {"state",
       {},
       {
           {"pattern", non_empty_string(cfg.state.pattern, "an event type pattern: \"a.b\", \"a.*\" or \"*\""), {}},
           {"partitions", count(1, 64, cfg.state.partitions), {}},
       }},
      {"targets",
       section_list<target_config>(cfg.targets, target_rules, finish_target,
                                   "targets (Sync documents, Sync map items or TaskRouter workers)"),
       {}},
      {"twilio",
       {},
       {
           {"base_url", base_url(cfg.twilio.base_url), {}},
           {"connect_timeout_ms", millis(1, one_hour_ms, cfg.twilio.connect_timeout), {}},
           {"read_timeout_ms", millis(1, one_hour_ms, cfg.twilio.read_timeout), {}},
       }},
      {"leads", {}, leads_rules(cfg.leads)},
      {"form_leads", {}, form_leads_rules(cfg.form_leads)},
  };
}

std::vector<std::string_view> names_of(const std::vector<key_rule>& rules) {
  std::vector<std::string_view> names;
  for (const auto& r : rules)
    names.push_back(r.name);
  return names;
}

/// Where else in the schema a key of this name lives: `port` at the top -> `http.port`.
std::optional<std::string> elsewhere(std::string_view key, const std::vector<key_rule>& rules,
                                     const std::string& parent, const std::string& skip) {
  const std::string k = normalized(key);
  for (const auto& r : rules) {
    const std::string path = child_path(parent, r.name);
    if (r.name == k && path != skip)
      return path;
    if (auto found = elsewhere(key, r.keys, path, skip))
      return found;
  }
  return std::nullopt;
}

check unknown_key(const std::string& path, std::string_view key, const std::vector<key_rule>& level,
                  const std::vector<key_rule>& root) {
  const auto names = names_of(level);
  std::string problem = "unknown key '" + std::string(key) + "'";
  if (auto guess = closest(key, names))
    problem += "; did you mean '" + std::string(*guess) + "'?";
  else if (auto other = elsewhere(key, root, {}, path))
    problem += "; did you mean '" + *other + "'?";
  return fail(path, problem, "the keys " + quoted_list(names));
}

check apply_rules(const json::value& v, const std::string& path, const std::vector<key_rule>& rules,
                  const std::vector<key_rule>& root) {
  if (!v.is_object())
    return fail(path.empty() ? "$" : path, "is " + describe(v) + ", not an object",
                "a JSON object with the keys " + quoted_list(names_of(rules)));
  for (const auto& member : v.get_object()) {
    const std::string_view key(member.key().data(), member.key().size());
    const std::string member_path = child_path(path, key);
    const auto rule = std::find_if(rules.begin(), rules.end(), [&](const key_rule& r) { return r.name == key; });
    if (rule == rules.end())
      return unknown_key(member_path, key, rules, root);
    if (auto error = rule->apply ? rule->apply(member.value(), member_path)
                                 : apply_rules(member.value(), member_path, rule->keys, root))
      return error;
  }
  return std::nullopt;
}

// --- secrets --------------------------------------------------------------------------------

bool looks_like_secret(std::string_view key) {
  const std::string k = normalized(key);
  for (std::string_view word : {"token", "password", "passwd", "secret", "api_key", "apikey"})
    if (k.find(word) != std::string::npos)
      return true;
  return false;
}

/// Secrets never come from the file (files get committed, copied and logged); reported before
/// any other check so that the user learns where the secret goes instead. The value is never
/// echoed.
check find_secret(const json::value& v, const std::string& path) {
  if (v.is_array()) {
    std::size_t i = 0;
    for (const auto& item : v.get_array())
      if (auto error = find_secret(item, path + "[" + std::to_string(i++) + "]"))
        return error;
  }
  if (!v.is_object())
    return std::nullopt;
  for (const auto& member : v.get_object()) {
    const std::string_view key(member.key().data(), member.key().size());
    const std::string member_path = child_path(path, key);
    if (looks_like_secret(key)) {
      const std::string k = normalized(key);
      const bool twilio = k.find("auth_token") != std::string::npos ||
                          normalized(path).find("twilio") != std::string::npos;
      const bool amqp = normalized(path).find("amqp") != std::string::npos;
      const std::string where =
          twilio ? "the environment variable TWILIO_AUTH_TOKEN"
          : amqp ? "the environment variable SWITCHBOARD_AMQP_PASSWORD"
                 : k.find("token") != std::string::npos
                       ? "the environment variable SWITCHBOARD_API_TOKEN"
                       : "the environment (SWITCHBOARD_API_TOKEN for the API token, TWILIO_AUTH_TOKEN for "
                         "Twilio)";
      return fail(member_path,
                  "looks like a secret; secrets are never read from the configuration file",
                  "no secrets here: remove '" + std::string(key) + "' and set " + where + " instead");
    }
    if (auto error = find_secret(member.value(), member_path))
      return error;
  }
  return std::nullopt;
}

// --- syntax and duplicate keys --------------------------------------------------------------

/// Walks the text once before the DOM is built, to learn what the DOM hides: where a syntax
/// error is, and keys given twice (Boost.JSON silently keeps the last, so a second "port"
/// would override the first without a word).
class duplicate_key_finder {
public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  std::string duplicate;  ///< key path of the first duplicate key, if any

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return open(false); }
  bool on_array_end(std::size_t, json::error_code&) { return close(); }
  bool on_object_begin(json::error_code&) { return open(true); }
  bool on_object_end(std::size_t, json::error_code&) { return close(); }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return scalar(); }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key_.append(s.data(), s.size());
    auto& top = stack_.back();
    if (!top.keys.insert(key_).second) {
      duplicate = child_path(path(), key_);
      ec = std::make_error_code(std::errc::invalid_argument);
      return false;
    }
    top.key = std::move(key_);
    key_.clear();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return scalar(); }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return scalar(); }
  bool on_double(double, json::string_view, json::error_code&) { return scalar(); }
  bool on_bool(bool, json::error_code&) { return scalar(); }
  bool on_null(json::error_code&) { return scalar(); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

private:
  struct frame {
    bool is_object = false;
    std::unordered_set<std::string> keys;
    std::string key;        // objects: the member being parsed
    std::size_t index = 0;  // arrays: the element being parsed
  };
  std::vector<frame> stack_;
  std::string key_;

  bool open(bool is_object) {
    stack_.push_back(frame{is_object, {}, {}, 0});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return scalar();
  }
  bool scalar() {
    if (!stack_.empty() && !stack_.back().is_object)
      ++stack_.back().index;
    return true;
  }
  std::string path() const {
    std::string out;
    for (std::size_t i = 0; i + 1 < stack_.size(); ++i)
      out = stack_[i].is_object ? child_path(out, stack_[i].key)
                                : out + "[" + std::to_string(stack_[i].index) + "]";
    return out;
  }
};

json::parse_options parse_options() {
  json::parse_options options;
  options.allow_comments = true;
  options.allow_trailing_commas = true;
  return options;
}

/// "line 3, column 12" of a byte offset; columns count characters, not UTF-8 bytes.
std::string position(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

check check_syntax(std::string_view text) {
  json::basic_parser<duplicate_key_finder> parser(parse_options());
  json::error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (!parser.handler().duplicate.empty()) {
    // The parser stopped just past the second key's closing quote; point at its opening one.
    const auto open = used >= 2 ? text.rfind('"', used - 2) : std::string_view::npos;
    return fail(parser.handler().duplicate,
                "is given twice (again at " + position(text, open == std::string_view::npos ? used : open) +
                    "), and only one value can win",
                "each key at most once per object");
  }
  if (!ec && used < text.size())
    ec = json::error::extra_data;
  if (!ec)
    return std::nullopt;
  std::string problem = "is not valid JSON: " + ec.message() + " at " + position(text, used);
  if (used >= text.size()) {
    problem += " (the end of the text)";
  } else {
    const auto line_end = text.find_first_of("\r\n", used);
    std::string near;
    for (const char c : text.substr(used, std::min<std::size_t>(20, line_end - used))) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7F) {
        near += c;
      } else {  // keep the message printable, whatever bytes the file holds
        static constexpr char hex[] = "0123456789ABCDEF";
        near += {'\\', 'x', hex[u >> 4], hex[u & 0xF]};
      }
    }
    if (!near.empty())
      problem += ", near '" + near + "'";
  }
  return fail("$", problem, "JSON text; // and /* */ comments and trailing commas are accepted");
}

std::string os_advice(int error) {
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return "the path of an existing file (relative paths start at the working directory); "
             "config/switchboard.json is a working example to copy";
    case EACCES:
    case EPERM:
      return "a file the switchboard user may read: fix its permissions or owner";
    case EISDIR:
      return "a JSON file, not a directory";
    default:
      return "a readable JSON configuration file";
  }
}

/// Closes a file descriptor on every path out.
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// `section.backoff_initial_ms` at most `section.backoff_max_ms`. Either may be the default, so
/// the error names the key the user gave.
check backoff_order(const json::value& doc, const std::string& section, std::chrono::milliseconds initial_ms,
                    std::chrono::milliseconds max_ms) {
  if (initial_ms <= max_ms)
    return std::nullopt;
  const auto* given = doc.get_object().if_contains(json::string_view(section.data(), section.size()));
  const bool initial_given = given && given->is_object() && given->get_object().contains("backoff_initial_ms");
  const bool max_given = given && given->is_object() && given->get_object().contains("backoff_max_ms");
  const std::string initial = std::to_string(initial_ms.count());
  const std::string max = std::to_string(max_ms.count());
  if (initial_given || !max_given)
    return fail(section + ".backoff_initial_ms",
                "is " + initial + ", larger than " + section + ".backoff_max_ms (" + max +
                    (max_given ? ")" : ", the default)"),
                "at most " + section + ".backoff_max_ms: lower backoff_initial_ms or raise backoff_max_ms");
  return fail(section + ".backoff_max_ms",
              "is " + max + ", smaller than " + section + ".backoff_initial_ms (" + initial + ", the default)",
              "at least " + section + ".backoff_initial_ms: raise backoff_max_ms or lower backoff_initial_ms");
}

/// Checks across the lead sections: the proxy pool, dealer ids, and which numbers are whose.
check check_leads(const config& cfg, const json::value& doc) {
  const auto& l = cfg.leads;
  const auto same = [](const std::string& s) { return s; };
  if (auto error = unique_keys(l.proxy_numbers, "leads.proxy_numbers", "", same, "each proxy number once"))
    return error;
  if (auto error = unique_keys(l.dealers, "leads.dealers", "id", [](const dealer_config& d) { return d.id; },
                               "an id used once in leads.dealers"))
    return error;
  if (!l.dealers.empty() && l.proxy_numbers.empty())
    return fail("leads.proxy_numbers", "is empty, but leads.dealers are given",
                "at least one E.164 proxy number, e.g. [\"+15550001111\"]: every conversation goes through one");
  for (std::size_t d = 0; d < l.dealers.size(); ++d) {
    const auto& locations = l.dealers[d].locations;
    for (std::size_t i = 0; i < locations.size(); ++i) {
      const auto proxy = std::find(l.proxy_numbers.begin(), l.proxy_numbers.end(), locations[i].phone);
      if (proxy != l.proxy_numbers.end())
        return fail("leads.dealers[" + std::to_string(d) + "].locations[" + std::to_string(i) + "].phone",
                    "is \"" + locations[i].phone + "\", which is leads.proxy_numbers[" +
                        std::to_string(proxy - l.proxy_numbers.begin()) +
                        "], so the conversation would bind the number to itself",
                    "the location's own phone, not one of leads.proxy_numbers");
    }
  }
  if (auto error = backoff_order(doc, "leads", l.backoff_initial, l.backoff_max))
    return error;
  return backoff_order(doc, "form_leads", cfg.form_leads.backoff_initial, cfg.form_leads.backoff_max);
}

/// Checks across the entity-state sections.
check check_propagation(const config& cfg) {
  if (auto error = unique_names(cfg.amqp_sources, "sources.amqp", [](const auto& a) { return a.name; }))
    return error;
  for (std::size_t i = 0; i < cfg.amqp_sources.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (cfg.amqp_sources[i].queue == cfg.amqp_sources[j].queue &&
          cfg.amqp_sources[i].host == cfg.amqp_sources[j].host &&
          cfg.amqp_sources[i].port == cfg.amqp_sources[j].port &&
          cfg.amqp_sources[i].vhost == cfg.amqp_sources[j].vhost)
        return fail("sources.amqp[" + std::to_string(i) + "].queue",
                    "is \"" + cfg.amqp_sources[i].queue + "\", consumed by sources.amqp[" + std::to_string(j) +
                        "] too, so the two would split its messages",
                    "one source per queue");
  if (auto error = unique_names(cfg.enrichment.lookups, "enrichment.lookups", [](const auto& l) { return l.name; }))
    return error;
  if (auto error = unique_names(cfg.targets, "targets", [](const auto& t) { return t.name; }))
    return error;
  if (!cfg.enrichment.lookups.empty() && cfg.enrichment.database.empty())
    return fail("enrichment.database", "is missing, but enrichment.lookups are given",
                "the path of the SQLite database the lookups query");
  std::string why;
  if (!core::type_pattern::parse(cfg.state.pattern, why))
    return fail("state.pattern", why, "\"a.b\", \"a.*\" or \"*\"");
  return std::nullopt;
}

} // namespace

config_result parse_config(std::string_view text, std::string source_name) {
  config_result result;
  auto failed = [&](config_error error) {
    error.file = source_name;
    result.error = std::move(error);
    return std::move(result);
  };

  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    text.remove_prefix(3);  // a UTF-8 byte order mark, as some editors write
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return failed(*fail("$", "is empty", "a JSON object; {} uses every default (see config/switchboard.json)"));
  if (auto error = check_syntax(text))
    return failed(*error);

  json::error_code ec;
  const json::value doc = json::parse(json::string_view(text.data(), text.size()), ec, {}, parse_options());
  if (ec)  // check_syntax accepted it; only running out of memory gets here
    return failed(*fail("$", "is not valid JSON: " + ec.message(), "JSON text"));

  if (auto error = find_secret(doc, {}))
    return failed(*error);

  config cfg;
  const auto rules = schema(cfg);
  if (auto error = apply_rules(doc, {}, rules, rules))
    return failed(*error);

  // Checks across keys: both may come from the file or the defaults.
  if (auto error = backoff_order(doc, "supervision", cfg.supervision.backoff_initial, cfg.supervision.backoff_max))
    return failed(*error);

  if (auto error = check_propagation(cfg))
    return failed(*error);
  if (auto error = check_leads(cfg, doc))
    return failed(*error);

  cfg.source = std::move(source_name);
  result.value = std::move(cfg);
  return result;
}

config_result load_config_file(const std::string& path) {
  auto failed = [&](std::string problem, std::string allowed) {
    config_result result;
    result.error = config_error{path, "$", std::move(problem), std::move(allowed)};
    return result;
  };
  if (path.empty())
    return failed("no file name given", "the path of a JSON configuration file, e.g. config/switchboard.json");

  const fd_guard file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) {
    const int error = errno;
    return failed("cannot open: " + std::generic_category().message(error), os_advice(error));
  }
  struct stat info {};
  if (::fstat(file.fd, &info) == 0 && S_ISDIR(info.st_mode))
    return failed("cannot read: it is a directory", os_advice(EISDIR));

  // Read at most one byte past the limit: enough to know the file is too big, whatever it
  // is (a FIFO or /proc file reports no useful size).
  std::string text;
  char buffer[16 * 1024];
  while (text.size() <= max_config_file_bytes) {
    const ssize_t n = ::read(file.fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      const int error = errno;
      return failed("cannot read: " + std::generic_category().message(error), os_advice(error));
    }
    if (n == 0)
      break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  if (text.size() > max_config_file_bytes)
    return failed("is larger than 1 MiB",
                  "a configuration file of at most 1048576 bytes (1 MiB); is this the right file?");

  return parse_config(text, path);  // which sets config::source to the path
}

std::optional<config_error> apply_listen_override(config& cfg, std::string_view host_port) {
  const std::string shown = "\"" + std::string(host_port) + "\"";
  const std::string allowed =
      "HOST:PORT with a port from 0 to 65535 (0 picks a free port), e.g. 127.0.0.1:8080, "
      "0.0.0.0:80 or [::1]:9000";
  auto failed = [&](std::string problem) {
    return config_error{std::string(command_line), "--listen", "is " + shown + ", " + std::move(problem),
                        allowed};
  };

  std::string_view host;
  std::string_view port;
  if (!host_port.empty() && host_port.front() == '[') {
    const auto close = host_port.find(']');
    if (close == std::string_view::npos)
      return failed("an IPv6 address without its closing ']'");
    host = host_port.substr(1, close - 1);
    const auto rest = host_port.substr(close + 1);
    if (rest.empty() || rest.front() != ':')
      return failed("which has no port after the address");
    port = rest.substr(1);
  } else {
    const auto colon = host_port.rfind(':');
    if (colon == std::string_view::npos)
      return failed("which has no port");
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return failed("an IPv6 address without brackets; write it as [ADDRESS]:PORT");
  }
  if (host.empty())
    return failed("which has no host");
  if (auto why = host_problem(host))
    return failed("whose host " + *why);
  if (port.empty())
    return failed("which has no port");

  unsigned long number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec == std::errc::result_out_of_range || (ec == std::errc{} && end == port.data() + port.size() &&
                                                number > 65535))
    return failed("whose port is out of range");
  if (ec != std::errc{} || end != port.data() + port.size())
    return failed("whose port is not a number");

  cfg.http.host.assign(host);
  cfg.http.port = static_cast<std::uint16_t>(number);
  cfg.http.enabled = true;
  return std::nullopt;
}

} // namespace switchboard
