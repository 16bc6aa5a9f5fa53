#include "core/config/schema.hpp"

#include "core/url.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace switchboard::core::config_schema {

namespace json = boost::json;

check fail(std::string key_path, std::string problem, std::string allowed) {
  return config_error{{}, std::move(key_path), std::move(problem), std::move(allowed)};
}

// --- key paths and names --------------------------------------------------------------------

namespace {

bool is_identifier(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
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

}  // namespace

std::string child_path(const std::string& parent, std::string_view key) {
  if (!is_identifier(key))
    return parent + "[" + json::serialize(json::string_view(key.data(), key.size())) + "]";
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string normalized(std::string_view name) {
  std::string out(name);
  for (auto& c : out)
    c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

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

namespace {

/// The value as an integer, if it is one. A number with no fraction (`1e6`) counts. Integers
/// beyond int64 saturate, which keeps them out of every range we check.
std::optional<std::int64_t> as_integer(const json::value& v) {
  constexpr auto int_max = std::numeric_limits<std::int64_t>::max();
  constexpr auto int_min = std::numeric_limits<std::int64_t>::min();
  if (v.is_int64())
    return v.get_int64();
  if (v.is_uint64())
    return v.get_uint64() > static_cast<std::uint64_t>(int_max)
               ? int_max
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

}  // namespace

std::string integer_range(std::int64_t min, std::int64_t max, std::string_view unit) {
  if (unit.empty())
    return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  return "a whole number of " + std::string(unit) + " from " + with_unit_name(min, unit) + " to " +
         with_unit_name(max, unit);
}

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

// --- key rules ------------------------------------------------------------------------------

apply_fn integer(std::int64_t min, std::int64_t max, std::string_view unit,
                 std::function<void(std::int64_t)> set) {
  return [min, max, unit, set = std::move(set)](const json::value& v,
                                                const std::string& path) -> check {
    const std::string allowed = integer_range(min, max, unit);
    const auto n = as_integer(v);
    if (!n)
      return fail(
          path, "is " + describe(v) + ", not " + (v.is_number() ? "a whole number" : "an integer"),
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
  return integer(1, one_gib, "bytes",
                 [&target](std::int64_t n) { target = static_cast<std::size_t>(n); });
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
  return [&target, allowed = std::move(allowed)](const json::value& v,
                                                 const std::string& path) -> check {
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

apply_fn port_number(std::uint16_t& target) {
  return integer(1, 65535, {},
                 [&target](std::int64_t n) { target = static_cast<std::uint16_t>(n); });
}

apply_fn seconds(std::int64_t min, std::int64_t max, std::chrono::seconds& target) {
  return integer(min, max, "seconds",
                 [&target](std::int64_t n) { target = std::chrono::seconds{n}; });
}

apply_fn any_string(std::string& target, std::string allowed) {
  return [&target, allowed = std::move(allowed)](const json::value& v,
                                                 const std::string& path) -> check {
    if (!v.is_string())
      return fail(path, "is " + describe(v) + ", not a string", allowed);
    const auto& s = v.get_string();
    if (s.size() > 65536 || std::find(s.begin(), s.end(), '\0') != s.end())
      return fail(path, "is " + describe(v) + ", too long or containing a NUL character", allowed);
    target.assign(s.data(), s.size());
    return std::nullopt;
  };
}

apply_fn list_of(std::vector<std::string>& target, std::function<apply_fn(std::string&)> item,
                 std::string allowed) {
  return [&target, item = std::move(item), allowed = std::move(allowed)](
             const json::value& v, const std::string& path) -> check {
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

apply_fn string_list(std::vector<std::string>& target, std::string allowed) {
  return list_of(
      target, [allowed](std::string& s) { return non_empty_string(s, allowed); }, allowed);
}

apply_fn string_pairs(std::vector<std::pair<std::string, std::string>>& target,
                      std::string allowed) {
  return [&target, allowed = std::move(allowed)](const json::value& v,
                                                 const std::string& path) -> check {
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

apply_fn http_url(std::string& target, std::string allowed) {
  return [&target, allowed = std::move(allowed)](const json::value& v,
                                                 const std::string& path) -> check {
    std::string s;
    if (auto error = any_string(s, allowed)(v, path))
      return error;
    if (s.empty()) {
      target.clear();
      return std::nullopt;
    }
    // Errors quote the URL without its user and password: they reach logs and terminals.
    const auto shown = describe(json::value(core::redacted_url(s)));
    const std::size_t scheme_end = s.rfind("http://", 0) == 0    ? 7
                                   : s.rfind("https://", 0) == 0 ? 8
                                                                 : 0;
    if (scheme_end == 0)
      return fail(path, "is " + shown + ", not an http(s) URL", allowed);
    if (std::any_of(s.begin(), s.end(),
                    [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); }))
      return fail(path, "is " + shown + ", a URL with whitespace or control characters", allowed);
    if (scheme_end == s.size() ||
        std::string_view("/?#").find(s[scheme_end]) != std::string_view::npos)
      return fail(path, "is " + shown + ", a URL without a host", allowed);
    target = std::move(s);
    return std::nullopt;
  };
}

std::vector<std::string_view> names_of(const std::vector<key_rule>& rules) {
  std::vector<std::string_view> names;
  for (const auto& r : rules)
    names.push_back(r.name);
  return names;
}

namespace {

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

}  // namespace

check apply_rules(const json::value& v, const std::string& path, const std::vector<key_rule>& rules,
                  const std::vector<key_rule>& root) {
  if (!v.is_object())
    return fail(path.empty() ? "$" : path, "is " + describe(v) + ", not an object",
                "a JSON object with the keys " + quoted_list(names_of(rules)));
  for (const auto& member : v.get_object()) {
    const std::string_view key(member.key().data(), member.key().size());
    const std::string member_path = child_path(path, key);
    const auto rule =
        std::find_if(rules.begin(), rules.end(), [&](const key_rule& r) { return r.name == key; });
    if (rule == rules.end())
      return unknown_key(member_path, key, rules, root);
    if (auto error = rule->apply ? rule->apply(member.value(), member_path)
                                 : apply_rules(member.value(), member_path, rule->keys, root))
      return error;
  }
  return std::nullopt;
}

// --- checks after a section is applied ------------------------------------------------------

check require(const std::string& value, const std::string& path, std::string_view key,
              std::string allowed) {
  if (!value.empty())
    return std::nullopt;
  return fail(child_path(path, key), "is missing", std::move(allowed));
}

check backoff_order(const json::value& doc, const std::string& section,
                    std::chrono::milliseconds initial_ms, std::chrono::milliseconds max_ms) {
  if (initial_ms <= max_ms)
    return std::nullopt;
  const auto* given =
      doc.get_object().if_contains(json::string_view(section.data(), section.size()));
  const bool initial_given =
      given && given->is_object() && given->get_object().contains("backoff_initial_ms");
  const bool max_given =
      given && given->is_object() && given->get_object().contains("backoff_max_ms");
  const std::string initial = std::to_string(initial_ms.count());
  const std::string max = std::to_string(max_ms.count());
  if (initial_given || !max_given)
    return fail(
        section + ".backoff_initial_ms",
        "is " + initial + ", larger than " + section + ".backoff_max_ms (" + max +
            (max_given ? ")" : ", the default)"),
        "at most " + section + ".backoff_max_ms: lower backoff_initial_ms or raise backoff_max_ms");
  return fail(section + ".backoff_max_ms",
              "is " + max + ", smaller than " + section + ".backoff_initial_ms (" + initial +
                  ", the default)",
              "at least " + section +
                  ".backoff_initial_ms: raise backoff_max_ms or lower backoff_initial_ms");
}

// --- secrets --------------------------------------------------------------------------------

namespace {

bool looks_like_secret(std::string_view key) {
  const std::string k = normalized(key);
  for (std::string_view word : {"token", "password", "passwd", "secret", "api_key", "apikey"})
    if (k.find(word) != std::string::npos)
      return true;
  return false;
}

}  // namespace

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
      return fail(
          member_path, "looks like a secret; secrets are never read from the configuration file",
          "no secrets here: remove '" + std::string(key) + "' and set " + where + " instead");
    }
    if (auto error = find_secret(member.value(), member_path))
      return error;
  }
  return std::nullopt;
}

}  // namespace switchboard::core::config_schema
