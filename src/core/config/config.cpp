#include "core/config/config.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
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

namespace core {

namespace {

namespace json = boost::json;
using namespace config_schema;

constexpr std::size_t max_config_file_bytes = std::size_t{1024} * 1024;
constexpr std::string_view command_line = "<command line>";

// --- the generic sections -------------------------------------------------------------------

apply_fn log_level(std::string& target) {
  return [&target](const json::value& v, const std::string& path) -> check {
    static const std::vector<std::string_view> levels{"trace", "debug",    "info", "warn",
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

/// The generic sections, with setters that write into `cfg`. Upper bounds are sanity limits: big
/// enough for any real deployment, small enough to catch a slipped digit.
std::vector<key_rule> generic_keys(config& cfg) {
  auto& h = cfg.http;
  auto& l = cfg.limits;
  auto& s = cfg.supervision;
  return {
      {"data_dir",
       non_empty_string(cfg.data_dir, "a non-empty directory path, e.g. \"./data\""),
       {}},
      {"http",
       {},
       {
           {"enabled", boolean(h.enabled), {}},
           {"host", host(h.host), {}},
           {"port",
            integer(0, 65535, {}, [&h](std::int64_t n) { h.port = static_cast<std::uint16_t>(n); }),
            {}},
           {"max_body_bytes", bytes(h.max_body_bytes), {}},
           {"max_header_bytes", bytes(h.max_header_bytes), {}},
           {"max_connections", count(1, 1'000'000, h.max_connections), {}},
           {"access_log", boolean(h.access_log), {}},
           {"keep_alive_max_count", count(1, 10'000'000, h.keep_alive_max_count), {}},
           {"read_timeout_ms", millis(1, one_hour_ms, h.read_timeout), {}},
           {"write_timeout_ms", millis(1, one_hour_ms, h.write_timeout), {}},
           {"worker_threads", count(1, 1024, h.worker_threads), {}},
       }},
      {"scheduler",
       {},
       {
           {"max_threads", count(1, 256, cfg.scheduler.max_threads), {}},
           {"moderate_sleep_us",
            integer(0, 1'000'000, "microseconds",
                    [&cfg](std::int64_t n) {
                      cfg.scheduler.moderate_sleep = std::chrono::microseconds{n};
                    }),
            {}},
           {"policy",
            one_of(cfg.scheduler.policy, {{"sharing", scheduler_config::policy_kind::sharing},
                                          {"stealing", scheduler_config::policy_kind::stealing}}),
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
  };
}

/// Checks across keys of the generic sections: both may come from the file or the defaults.
check check_generic(const config& cfg, const json::value& doc) {
  return backoff_order(doc, "supervision", cfg.supervision.backoff_initial,
                       cfg.supervision.backoff_max);
}

constexpr config_section generic_sections{generic_keys, check_generic};

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
                "is given twice (again at " +
                    position(text, open == std::string_view::npos ? used : open) +
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
    case EPERM: return "a file the switchboard user may read: fix its permissions or owner";
    case EISDIR: return "a JSON file, not a directory";
    default: return "a readable JSON configuration file";
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

}  // namespace

config_result parse_config_sections(std::string_view text, std::string source_name,
                                    const std::vector<config_section>& job_sections) {
  config_result result;
  auto failed = [&](config_error error) {
    error.file = source_name;
    result.error = std::move(error);
    return std::move(result);
  };

  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    text.remove_prefix(3);  // a UTF-8 byte order mark, as some editors write
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return failed(*fail("$", "is empty",
                        "a JSON object; {} uses every default (see config/switchboard.json)"));
  if (auto error = check_syntax(text))
    return failed(*error);

  json::error_code ec;
  const json::value doc =
      json::parse(json::string_view(text.data(), text.size()), ec, {}, parse_options());
  if (ec)  // check_syntax accepted it; only running out of memory gets here
    return failed(*fail("$", "is not valid JSON: " + ec.message(), "JSON text"));

  // Before any other check, so that the user learns where the secret goes instead.
  if (auto error = find_secret(doc, {}))
    return failed(*error);

  // One set of rules for the whole file: an unknown key anywhere is matched against every
  // section's keys, whoever owns them.
  config cfg;
  std::vector<key_rule> rules = generic_sections.keys(cfg);
  for (const auto& section : job_sections)
    for (auto& rule : section.keys(cfg))
      rules.push_back(std::move(rule));
  if (auto error = apply_rules(doc, {}, rules, rules))
    return failed(*error);

  if (auto error = generic_sections.cross_check(cfg, doc))
    return failed(*error);
  for (const auto& section : job_sections)
    if (auto error = section.cross_check(cfg, doc))
      return failed(*error);

  cfg.source = std::move(source_name);
  result.value = std::move(cfg);
  return result;
}

config_file_text read_config_file(const std::string& path) {
  auto failed = [&](std::string problem, std::string allowed) {
    return config_file_text{{}, config_error{path, "$", std::move(problem), std::move(allowed)}};
  };
  if (path.empty())
    return failed("no file name given",
                  "the path of a JSON configuration file, e.g. config/switchboard.json");

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

  return config_file_text{std::move(text), std::nullopt};
}

}  // namespace core

std::optional<config_error> apply_listen_override(config& cfg, std::string_view host_port) {
  const std::string shown = "\"" + std::string(host_port) + "\"";
  const std::string allowed =
      "HOST:PORT with a port from 0 to 65535 (0 picks a free port), e.g. 127.0.0.1:8080, "
      "0.0.0.0:80 or [::1]:9000";
  auto failed = [&](std::string problem) {
    return config_error{std::string(core::command_line), "--listen",
                        "is " + shown + ", " + std::move(problem), allowed};
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
  if (auto why = core::config_schema::host_problem(host))
    return failed("whose host " + *why);
  if (port.empty())
    return failed("which has no port");

  unsigned long number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec == std::errc::result_out_of_range ||
      (ec == std::errc{} && end == port.data() + port.size() && number > 65535))
    return failed("whose port is out of range");
  if (ec != std::errc{} || end != port.data() + port.size())
    return failed("whose port is not a number");

  cfg.http.host.assign(host);
  cfg.http.port = static_cast<std::uint16_t>(number);
  cfg.http.enabled = true;
  return std::nullopt;
}

}  // namespace switchboard
