// The Twilio emulator's HTTP side: Basic auth, routing, faults, the request log, the
// /_emulator/ endpoints and webhook delivery. The products live in emulator_sync.cpp,
// emulator_conversations.cpp and emulator_taskrouter.cpp; what their handlers share (errors,
// typed fields, paging) in emulator_handlers.cpp.

#include "adapters/twilio/emulator.hpp"
#include "adapters/http/elastic_pool.hpp"
#include "adapters/http/listen_socket.hpp"
#include "core/exception_text.hpp"

#include "adapters/twilio/emulator_courier.hpp"
#include "adapters/twilio/emulator_impl.hpp"
#include "adapters/twilio/emulator_rules.hpp"
#include "adapters/twilio/signature.hpp"
#include "core/auth.hpp"
#include "core/form.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace switchboard::adapters::twilio {

namespace {

using namespace internal;

constexpr const char* json_type = "application/json";
constexpr std::size_t request_log_capacity = 10000;
constexpr auto longest_hold = std::chrono::minutes{10};  // a "timeout" fault gives up after

json::object error_body(int status, int code, const std::string& message) {
  return {{"code", code},
          {"message", message},
          {"more_info", "https://www.twilio.com/docs/errors/" + std::to_string(code)},
          {"status", status}};
}

std::optional<std::string> base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '+')
      return 62;
    if (c == '/')
      return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=')
    text.remove_suffix(1);
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0)
      return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return out;
}

/// Decodes application/x-www-form-urlencoded text into `params`.
void parse_form(const std::string& body, httplib::Params& params) {
  for (auto& [name, value] : core::parse_form(body))
    params.emplace(std::move(name), std::move(value));
}

/// The connection a request came in on, found by its two addresses, so that a held request
/// ("timeout" fault) notices when the client hangs up. -1 if it cannot be found.
int connection_of(const httplib::Request& req) {
  auto address_text = [](const sockaddr_storage& addr, int& port) -> std::string {
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
      port = ntohs(a.sin_port);
      ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    } else if (addr.ss_family == AF_INET6) {
      const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
      port = ntohs(a.sin6_port);
      ::inet_ntop(AF_INET6, &a.sin6_addr, text, sizeof text);
    } else {
      port = -1;
    }
    return text;
  };
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr)
    return -1;
  int found = -1;
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0')
      continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        ::getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0)
      continue;
    int local_port = -1, peer_port = -1;
    const auto local_addr = address_text(local, local_port);
    const auto peer_addr = address_text(peer, peer_port);
    if (local_port == req.local_port && peer_port == req.remote_port &&
        peer_addr == req.remote_addr && local_addr == req.local_addr) {
      found = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(dir);
  return found;
}

/// What the fault rules decided for one request.
struct fault_decision {
  rules::fault_kind kind = rules::fault_kind::none;
  const char* name = nullptr;  ///< for the request log
  fault_rule rule;
};

json::object fault_rule_json(const fault_rule& r) {
  return {{"route", r.route},
          {"rate_429", r.rate_429},
          {"retry_after_s", r.retry_after_s},
          {"rate_5xx", r.rate_5xx},
          {"status_5xx", r.status_5xx},
          {"apply_on_5xx", r.apply_on_5xx},
          {"latency_ms", r.latency_ms},
          {"rate_timeout", r.rate_timeout},
          {"timeout_applies", r.timeout_applies}};
}

/// A rule from POST /_emulator/faults, or 400 naming what is wrong.
fault_rule fault_rule_from(const json::value& v, std::size_t at) {
  const auto where = "rules[" + std::to_string(at) + "]";
  auto bad = [&](const std::string& what) {
    return api_error(400, 20001, "POST /_emulator/faults: " + where + ": " + what);
  };
  if (!v.is_object())
    throw bad("must be an object");
  fault_rule r;
  for (const auto& [name, field] : v.as_object()) {
    auto number = [&, key = std::string{name}](double lo, double hi) {
      if (!field.is_number())
        throw bad("\"" + key + "\" must be a number");
      const double d = field.to_number<double>();
      if (d < lo || d > hi)
        throw bad("\"" + key + "\" must be from " + std::to_string(lo) + " to " +
                  std::to_string(hi));
      return d;
    };
    auto boolean = [&, key = std::string{name}] {
      if (!field.is_bool())
        throw bad("\"" + key + "\" must be true or false");
      return field.as_bool();
    };
    if (name == "route") {
      if (!field.is_string())
        throw bad("\"route\" must be a string like \"POST /sync/v1/Services/*/Documents/*\"");
      r.route = std::string{field.as_string()};
    } else if (name == "rate_429") {
      r.rate_429 = number(0, 1);
    } else if (name == "retry_after_s") {
      r.retry_after_s = static_cast<int>(number(0, 3600));
    } else if (name == "rate_5xx") {
      r.rate_5xx = number(0, 1);
    } else if (name == "status_5xx") {
      r.status_5xx = static_cast<int>(number(500, 599));
    } else if (name == "apply_on_5xx") {
      r.apply_on_5xx = boolean();
    } else if (name == "latency_ms") {
      r.latency_ms = static_cast<int>(number(0, 600000));
    } else if (name == "rate_timeout") {
      r.rate_timeout = number(0, 1);
    } else if (name == "timeout_applies") {
      r.timeout_applies = boolean();
    } else {
      throw bad("unknown field \"" + std::string{name} +
                "\" (fields: route, rate_429, retry_after_s, rate_5xx, status_5xx, "
                "apply_on_5xx, latency_ms, rate_timeout, timeout_applies)");
    }
  }
  if (r.rate_429 + r.rate_5xx + r.rate_timeout > 1.0 + 1e-9)
    throw bad("rate_429 + rate_5xx + rate_timeout must be at most 1");
  return r;
}

}  // namespace

// --- the emulator ---------------------------------------------------------------------------

struct emulator::impl {
  explicit impl(emulator_options o)
      : options(std::move(o)),
        courier(options.auth_token),
        fault_rules(options.faults),
        fault_rng(options.seed),
        sid_rng(std::random_device{}()) {}

  emulator_options options;
  http::listen_socket listen_socket;  // before server, which calls into it
  httplib::Server server;
  std::thread listener;
  std::string address;  ///< HOST:PORT once started
  std::string base_url;
  std::atomic<bool> stopping{false};
  std::atomic<bool> listener_done{false};
  route_table routes;
  webhook_courier courier;

  std::mutex faults_mutex;
  std::vector<fault_rule> fault_rules;
  std::uint64_t fault_seed = 0;
  std::mt19937_64 fault_rng;

  std::mutex log_mutex;
  std::deque<json::object> request_log;
  std::uint64_t logged = 0;  ///< entries ever logged; the oldest kept is logged - size()

  std::mutex state_mutex;
  state st;
  std::mt19937_64 sid_rng;  ///< SIDs differ between runs, so stale SIDs never resolve

  void add_emulator_routes();
  void serve(const httplib::Request& req, httplib::Response& res);
  bool authorized(const httplib::Request& req) const;
  fault_decision draw_fault(const std::string& method, const std::string& path);
  answer run_locked(const route& r, const call& c, std::vector<webhook_call>& webhooks);
  std::uint64_t log_arrival(const httplib::Request& req);
  void log_outcome(std::uint64_t id, std::optional<int> status, const char* fault);
  void hold_without_answer(const httplib::Request& req);
  bool wait_unless_stopping(std::chrono::milliseconds how_long);
};

bool emulator::impl::authorized(const httplib::Request& req) const {
  const auto header = req.get_header_value("Authorization");
  constexpr std::string_view scheme = "Basic ";
  if (header.size() <= scheme.size() ||
      strncasecmp(header.c_str(), scheme.data(), scheme.size()) != 0)
    return false;
  auto decoded = base64_decode(std::string_view{header}.substr(scheme.size()));
  if (!decoded)
    return false;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos)
    return false;
  const std::string_view user{decoded->data(), colon};
  const std::string_view password = std::string_view{*decoded}.substr(colon + 1);
  // Both compared in full, so the time taken does not say which one was wrong.
  const bool user_ok = core::constant_time_equal(user, options.account_sid);
  const bool password_ok = core::constant_time_equal(password, options.auth_token);
  return user_ok && password_ok;
}

fault_decision emulator::impl::draw_fault(const std::string& method, const std::string& path) {
  std::lock_guard lock{faults_mutex};
  for (const auto& rule : fault_rules) {
    if (!rules::fault_route_matches(rule.route, method, path))
      continue;
    fault_decision d;
    d.rule = rule;
    d.kind = rules::fault_for(rule, rules::unit_draw(fault_rng));
    switch (d.kind) {
      case rules::fault_kind::too_many_requests: d.name = "429"; break;
      case rules::fault_kind::server_error: d.name = "5xx"; break;
      case rules::fault_kind::timeout: d.name = "timeout"; break;
      case rules::fault_kind::none: d.name = rule.latency_ms > 0 ? "latency" : nullptr; break;
    }
    return d;
  }
  return {};
}

std::uint64_t emulator::impl::log_arrival(const httplib::Request& req) {
  json::object params;
  for (const auto& [name, value] : req.params) {
    auto it = params.find(name);
    if (it == params.end()) {
      params[name] = value;
    } else if (it->value().is_array()) {
      it->value().as_array().push_back(json::value(value));
    } else {
      json::array values{it->value(), json::value(value)};
      it->value() = std::move(values);
    }
  }
  std::lock_guard lock{log_mutex};
  if (request_log.size() >= request_log_capacity)
    request_log.pop_front();
  request_log.push_back({{"method", req.method},
                         {"path", req.path},
                         {"params", std::move(params)},
                         {"status", nullptr}});
  return logged++;
}

void emulator::impl::log_outcome(std::uint64_t id, std::optional<int> status, const char* fault) {
  std::lock_guard lock{log_mutex};
  const auto oldest = logged - request_log.size();
  if (id < oldest || id >= logged)
    return;  // cleared or dropped since it arrived
  auto& entry = request_log[static_cast<std::size_t>(id - oldest)];
  entry["status"] = status ? json::value(*status) : json::value(nullptr);
  if (fault != nullptr)
    entry["fault"] = fault;
}

bool emulator::impl::wait_unless_stopping(std::chrono::milliseconds how_long) {
  const auto until = steady_clock::now() + how_long;
  while (!stopping.load()) {
    const auto left = until - steady_clock::now();
    if (left <= std::chrono::milliseconds::zero())
      return true;
    std::this_thread::sleep_for(
        std::min<steady_clock::duration>(left, std::chrono::milliseconds{20}));
  }
  return false;
}

void emulator::impl::hold_without_answer(const httplib::Request& req) {
  const int fd = connection_of(req);
  const auto give_up = steady_clock::now() + longest_hold;
  while (!stopping.load() && steady_clock::now() < give_up) {
    if (fd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
      continue;
    }
    pollfd p{fd, static_cast<short>(POLLIN | POLLRDHUP), 0};
    const int ready = ::poll(&p, 1, 20);
    if (ready < 0 && errno != EINTR)
      break;
    if (ready > 0) {
      if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0)
        break;  // the client hung up
      char byte = 0;
      if (::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});  // it sent more; keep silent
    }
  }
  // Close the connection under cpp-httplib, so the response it goes on to write never arrives.
  if (fd >= 0)
    ::shutdown(fd, SHUT_RDWR);
}

answer emulator::impl::run_locked(const route& r, const call& c,
                                  std::vector<webhook_call>& webhooks) {
  std::lock_guard lock{state_mutex};
  context ctx{options, st, sid_rng, base_url};
  auto a = r.run(ctx, c);
  webhooks = std::move(ctx.webhooks);
  return a;
}

void emulator::impl::serve(const httplib::Request& req, httplib::Response& res) {
  const bool emulator_path = req.path.rfind("/_emulator/", 0) == 0;
  // The /_emulator/ endpoints stay out of the log, which shows what clients asked of Twilio.
  const bool logged_request = !emulator_path;
  const std::uint64_t log_id = logged_request ? log_arrival(req) : 0;
  fault_decision fault;
  answer a;
  std::vector<webhook_call> webhooks;
  try {
    if (!authorized(req)) {
      res.set_header("WWW-Authenticate", R"(Basic realm="Twilio API")");
      throw api_error(401, 20003,
                      "Authenticate: send HTTP Basic auth with this emulator's account SID as "
                      "the user and its auth token as the password");
    }
    const auto m = routes.find(req.method, req.path);
    if (m.found == nullptr) {
      if (!m.methods_for_path.empty()) {
        std::string allowed;
        for (const auto& method : m.methods_for_path)
          allowed += (allowed.empty() ? "" : ", ") + method;
        res.set_header("Allow", allowed);
        throw api_error(405, 20004,
                        "Method not allowed: " + req.method + " " + req.path + " takes " + allowed);
      }
      throw not_found(20404, req.path);
    }
    const auto& r = *m.found;
    const auto content_type = req.get_header_value("Content-Type");
    if (r.body == body_kind::form) {
      if (!req.body.empty() && content_type.rfind("application/x-www-form-urlencoded", 0) != 0)
        throw api_error(400, 20001,
                        "Unsupported Content-Type '" + content_type + "' for " + req.method + " " +
                            req.path +
                            ": send the parameters form-encoded "
                            "(application/x-www-form-urlencoded)");
      for (const auto& [name, value] : req.params) {
        if (std::find(r.fields.begin(), r.fields.end(), name) != r.fields.end())
          continue;
        std::string accepted;
        for (const auto& f : r.fields)
          accepted += (accepted.empty() ? "" : ", ") + f;
        throw api_error(400, 20001,
                        "Unknown parameter '" + name + "' for " + req.method + " " + r.pattern +
                            ": this emulator accepts " +
                            (accepted.empty() ? std::string{"no parameters"} : accepted) +
                            " (check the spelling and case; Twilio's names are PascalCase)");
      }
    }
    const call c{req, m.args};

    if (!emulator_path)
      fault = draw_fault(req.method, req.path);
    if (fault.rule.latency_ms > 0 &&
        !wait_unless_stopping(std::chrono::milliseconds{fault.rule.latency_ms}))
      return hold_without_answer(req);

    using rules::fault_kind;
    if (fault.kind == fault_kind::too_many_requests) {
      api_error e(429, 20429,
                  "Too Many Requests (injected by the emulator's fault rule '" + fault.rule.route +
                      "'); it is always safe to retry");
      e.retry_after_s = fault.rule.retry_after_s;
      throw e;
    }
    const bool applies = fault.kind == fault_kind::none ||
                         (fault.kind == fault_kind::server_error && fault.rule.apply_on_5xx) ||
                         (fault.kind == fault_kind::timeout && fault.rule.timeout_applies);
    if (applies)
      a = run_locked(r, c, webhooks);
    if (fault.kind == fault_kind::timeout) {
      courier.send(std::move(webhooks));
      if (logged_request)
        log_outcome(log_id, std::nullopt, fault.name);
      return hold_without_answer(req);
    }
    if (fault.kind == fault_kind::server_error) {
      courier.send(std::move(webhooks));
      throw api_error(fault.rule.status_5xx, 20000 + fault.rule.status_5xx,
                      std::string{"Service unavailable (injected by the emulator's fault rule '"} +
                          fault.rule.route + "'; the request was " +
                          (fault.rule.apply_on_5xx ? "" : "not ") + "applied)");
    }
  } catch (const api_error& e) {
    a = answer{e.status, error_body(e.status, e.code, e.what()), {}};
    if (e.retry_after_s)
      a.headers.emplace_back("Retry-After", std::to_string(*e.retry_after_s));
  }

  res.status = a.status;
  for (const auto& [name, value] : a.headers)
    res.set_header(name.c_str(), value);
  if (!a.body.is_null())
    res.set_content(json::serialize(a.body), json_type);
  if (logged_request)
    log_outcome(log_id, a.status, fault.name);
  courier.send(std::move(webhooks));
  if (logged_request && options.on_answer)
    options.on_answer(req.method, req.path, a.status);
}

void emulator::impl::add_emulator_routes() {
  routes.add("GET", "/_emulator/requests", {}, [this](context&, const call&) {
    json::array entries;
    {
      std::lock_guard lock{log_mutex};
      for (const auto& e : request_log)
        entries.push_back(e);
    }
    return ok({{"requests", std::move(entries)}});
  });
  routes.add("DELETE", "/_emulator/requests", {}, [this](context&, const call&) {
    std::lock_guard lock{log_mutex};
    request_log.clear();  // `logged` goes on counting, so requests under way find no entry
    return no_content();
  });
  routes.add("GET", "/_emulator/state", {}, [this](context& ctx, const call&) {
    json::object faults;
    {
      std::lock_guard lock{faults_mutex};
      json::array rules_json;
      for (const auto& r : fault_rules)
        rules_json.push_back(fault_rule_json(r));
      faults["rules"] = std::move(rules_json);
    }
    return ok({{"account_sid", options.account_sid},
               {"sync", dump_sync(ctx)},
               {"conversations", dump_conversations(ctx)},
               {"taskrouter", dump_taskrouter(ctx)},
               {"messaging", dump_messaging(ctx)},
               {"webhook_deliveries", courier.deliveries()},
               {"faults", std::move(faults)}});
  });
  routes.add("GET", "/_emulator/faults", {}, [this](context&, const call&) {
    std::lock_guard lock{faults_mutex};
    json::array rules_json;
    for (const auto& r : fault_rules)
      rules_json.push_back(fault_rule_json(r));
    return ok({{"seed", fault_seed}, {"rules", std::move(rules_json)}});
  });
  routes.add(
      "POST", "/_emulator/faults", {},
      [this](context&, const call& c) {
        boost::system::error_code ec;
        auto body = json::parse(c.http.body, ec);
        if (ec || !body.is_object())
          throw api_error(400, 20001,
                          "POST /_emulator/faults takes a JSON object such as {\"seed\": 7, "
                          "\"rules\": [{\"route\": \"*\", \"rate_429\": 0.5}]}");
        std::optional<std::uint64_t> seed;
        std::vector<fault_rule> parsed;
        for (const auto& [name, field] : body.as_object()) {
          if (name == "seed") {
            if (!field.is_number() || field.to_number<double>() < 0)
              throw api_error(400, 20001,
                              "POST /_emulator/faults: \"seed\" must be a whole number");
            seed = field.to_number<std::uint64_t>();
          } else if (name == "rules") {
            if (!field.is_array())
              throw api_error(400, 20001, "POST /_emulator/faults: \"rules\" must be an array");
            for (std::size_t i = 0; i < field.as_array().size(); ++i)
              parsed.push_back(fault_rule_from(field.as_array()[i], i));
          } else {
            throw api_error(400, 20001,
                            "POST /_emulator/faults: unknown field \"" + std::string{name} +
                                "\" (fields: seed, rules)");
          }
        }
        std::lock_guard lock{faults_mutex};
        fault_rules = std::move(parsed);
        if (seed) {
          fault_seed = *seed;
          fault_rng.seed(*seed);
        }
        json::array rules_json;
        for (const auto& r : fault_rules)
          rules_json.push_back(fault_rule_json(r));
        return ok({{"seed", fault_seed}, {"rules", std::move(rules_json)}});
      },
      body_kind::json);
  routes.add("DELETE", "/_emulator/faults", {}, [this](context&, const call&) {
    std::lock_guard lock{faults_mutex};
    fault_rules.clear();
    return no_content();
  });
  routes.add("POST", "/_emulator/inbound-sms", {"From", "To", "Body"}, inbound_sms);
}

// --- the public class -----------------------------------------------------------------------

namespace {

emulator_options completed(emulator_options o) {
  if (o.account_sid.empty())
    if (const char* env = std::getenv("TWILIO_ACCOUNT_SID"))
      o.account_sid = env;
  if (o.auth_token.empty())
    if (const char* env = std::getenv("TWILIO_AUTH_TOKEN"))
      o.auth_token = env;
  if (o.account_sid.empty())
    throw std::invalid_argument(
        "twilio emulator: no account SID: set TWILIO_ACCOUNT_SID or pass one (\"AC\" + 32 hex "
        "digits; any value of that shape works, e.g. AC00000000000000000000000000000000)");
  if (!rules::is_sid(o.account_sid, "AC"))
    throw std::invalid_argument("twilio emulator: account SID '" + o.account_sid +
                                "' is not \"AC\" followed by 32 hex digits");
  if (o.auth_token.empty())
    throw std::invalid_argument(
        "twilio emulator: no auth token: set TWILIO_AUTH_TOKEN or pass one (any non-empty "
        "string; clients send it as the Basic auth password and webhooks are signed with it)");
  if (o.sync_writes_per_s <= 0 || o.sync_burst_window_s <= 0)
    throw std::invalid_argument(
        "twilio emulator: sync_writes_per_s and sync_burst_window_s must be positive");
  return o;
}

/// httplib's task queue on an elastic pool.
class elastic_tasks final : public httplib::TaskQueue {
public:
  elastic_tasks(std::size_t max_threads, std::size_t keep_threads)
      : pool_(max_threads, keep_threads) {}
  void enqueue(std::function<void()> fn) override { pool_.enqueue(std::move(fn)); }
  void shutdown() override { pool_.shutdown(); }

private:
  adapters::http::elastic_pool pool_;
};

}  // namespace

emulator::emulator(emulator_options options)
    : impl_(std::make_unique<impl>(completed(std::move(options)))) {
  auto& s = impl_->server;
  auto* self = impl_.get();
  // As in adapters/http: no Nagle stalls, many requests per connection, SO_REUSEADDR only.
  s.set_tcp_nodelay(true);
  s.set_socket_options(self->listen_socket.options());
  s.set_keep_alive_max_count(100000);
  // An idle kept-alive connection holds a worker until this runs out, also during stop().
  s.set_keep_alive_timeout(1);
  s.set_payload_max_length(8 * 1024 * 1024);
  // A thread per kept-alive client, started on demand ("timeout" faults hold one each).
  s.new_task_queue = [] { return new elastic_tasks(256, 4); };

  add_sync_routes(self->routes);
  add_conversations_routes(self->routes);
  add_taskrouter_routes(self->routes);
  add_messaging_routes(self->routes);
  self->add_emulator_routes();

  auto serve = [self](const httplib::Request& req, httplib::Response& res) {
    self->serve(req, res);
  };
  s.Get(".*", serve);
  s.Delete(".*", serve);
  // POST bodies are read here rather than by cpp-httplib, whose 0.11 build refuses form bodies
  // over 8 KiB (CPPHTTPLIB_FORM_URL_ENCODED_PAYLOAD_MAX_LENGTH) while Sync takes 16 KiB of Data.
  s.Post(".*", [self](const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& read_content) {
    httplib::Request with_body = req;
    read_content([&](const char* data, std::size_t size) {
      with_body.body.append(data, size);
      return true;
    });
    if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0)
      parse_form(with_body.body, with_body.params);
    self->serve(with_body, res);
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty())
      return;
    const int code = res.status == 404 ? 20404 : 20000 + res.status;
    const auto message = res.status == 404 ? "The requested resource " + req.path + " was not found"
                         : res.status == 413 ? std::string{"Request entity too large"}
                                             : "Request failed: " + req.method + " " + req.path;
    res.set_content(json::serialize(error_body(res.status, code, message)), json_type);
  });
  s.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        const auto what = core::exception_text(ep);
        spdlog::error("twilio emulator: {} {} failed: {}", req.method, req.path, what);
        res.status = 500;
        res.set_content(json::serialize(error_body(500, 20500, "Internal Server Error: " + what)),
                        json_type);
      });
}

emulator::~emulator() { stop(); }

std::string emulator::start() {
  auto& self = *impl_;
  if (self.listener.joinable())
    return self.address;
  const auto& host = self.options.host;
  int port = self.options.port;
  errno = 0;
  bool bound = false;
  if (port == 0) {
    port = self.server.bind_to_any_port(host);
    bound = port > 0;
  } else {
    bound = self.server.bind_to_port(host, port);
  }
  if (!bound) {
    auto reason = errno != 0 ? std::string{std::strerror(errno)} : "bind failed";
    throw std::runtime_error("twilio emulator: cannot listen on " + host + ":" +
                             std::to_string(self.options.port) + ": " + reason +
                             " (pick a free port with --port, or 0 for any)");
  }
  self.listen_socket.widen_backlog();
  const auto shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  self.address = shown_host + ":" + std::to_string(port);
  self.base_url = "http://" + self.address;
  self.stopping = false;
  self.courier.start();
  self.listener_done = false;
  self.listener = std::thread([&self] {
    self.server.listen_after_bind();
    self.listener_done = true;
  });
  // httplib's stop() does nothing until the server runs: wait for it, so that a stop() right
  // after start() cannot leave the listener blocked forever.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!self.server.is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  return self.address;
}

void emulator::stop() {
  auto& self = *impl_;
  if (!self.listener.joinable())
    return;
  self.stopping = true;  // releases held ("timeout") and delayed requests
  // cpp-httplib 0.11's stop() does nothing until listen_after_bind() has marked the server
  // running, so a stop() right after start() would leave the listener waiting for ever.
  while (!self.server.is_running() && !self.listener_done.load())
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  self.server.stop();
  self.listener.join();
  self.courier.stop();
}

std::string emulator::base_url() const { return impl_->base_url; }

const emulator_options& emulator::options() const noexcept { return impl_->options; }

}  // namespace switchboard::adapters::twilio
