#include "adapters/http/http_server.hpp"

#include "adapters/http/openapi_document.hpp"

#include "core/auth.hpp"
#include "core/exception_text.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <stdexcept>

namespace switchboard::adapters::http {

namespace {

using ports::error_reply;
using ports::http_reply;
using ports::http_request;
using ports::json_reply;

constexpr std::size_t default_page = 100;
constexpr std::size_t max_page = 1000;

const std::string* param_of(const http_request& req, const char* name) {
  for (const auto& [k, v] : req.params)
    if (k == name)
      return &v;
  return nullptr;
}

/// Reads an optional unsigned query parameter in [min, max] into `out`; on a bad value returns
/// the 400 naming the parameter.
std::optional<http_reply> number_param(const http_request& req, const char* name, std::uint64_t min,
                                       std::uint64_t max, const char* meaning, std::uint64_t& out) {
  const auto* text = param_of(req, name);
  if (text == nullptr)
    return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (!text->empty() && ec == std::errc{} && end == text->data() + text->size() && v >= min &&
      v <= max) {
    out = v;
    return std::nullopt;
  }
  const auto shown = text->size() > 64 ? text->substr(0, 64) + "..." : *text;
  return error_reply(400, std::string{"query parameter '"} + name + "': must be " + meaning +
                              ", got '" + shown + "'");
}

std::string range_text(std::size_t lo, std::size_t hi) {
  return "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

boost::json::object dead_letter_json(const dead_letter_info& d) {
  return {{"id", d.id},
          {"consumer", d.consumer},
          {"sequence", d.sequence},
          {"reason", d.reason},
          {"attempts", d.attempts},
          {"last_error", d.last_error},
          {"parked_at", d.parked_at}};
}

std::optional<std::uint64_t> path_id(const http_request& req) {
  if (req.matches.size() < 2)
    return std::nullopt;
  const auto& text = req.matches[1];
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return v;
}

http_reply unknown_dead_letter(const std::string& id, const std::string& verb) {
  return error_reply(
      404,
      "no dead letter with id " + id + " to " + verb +
          (verb == "retry" ? " (or its named subscription is not running in this process)" : "") +
          "; list them with GET /v1/dead-letters");
}

http_reply unavailable() {
  return error_reply(503, "this server does not serve this API (no runtime attached)");
}

wire_reply to_wire(http_reply r) {
  wire_reply w;
  w.status = r.status;
  w.body = std::move(r.body);
  w.content_type = std::move(r.content_type);
  w.headers = std::move(r.headers);
  // Every JSON answer ends with a newline, so `curl` leaves the prompt on its own line.
  if (!w.body.empty() && w.body.back() != '\n' &&
      w.content_type.compare(0, 16, "application/json") == 0)
    w.body.push_back('\n');
  return w;
}

}  // namespace

http_server::http_server(http_config cfg, hooks h) : cfg_(std::move(cfg)), hooks_(std::move(h)) {
  auto add = [this](ports::http_route r) {
    std::regex pattern{r.pattern, std::regex::ECMAScript | std::regex::optimize};
    routes_.push_back(route{std::move(r), std::move(pattern)});
  };
  for (auto& r : bus_routes())
    add(std::move(r));
  for (auto& r : hooks_.routes) {
    if (r.method != "GET" && r.method != "POST" && r.method != "DELETE" && r.method != "PUT")
      throw std::invalid_argument("http_server: route " + r.pattern + " has an unknown method " +
                                  r.method);
    add(r);
  }
  listener_options o;
  o.host = cfg_.host;
  o.port = cfg_.port;
  o.max_header_bytes = cfg_.max_header_bytes;
  o.max_body_bytes = cfg_.max_body_bytes;
  o.max_connections = cfg_.max_connections;
  o.keep_alive_max_count = cfg_.keep_alive_max_count;
  o.read_timeout = cfg_.read_timeout;
  o.write_timeout = cfg_.write_timeout;
  o.worker_threads = cfg_.worker_threads;
  request_handler& self = *this;
  listener_ = std::make_unique<http_listener>(std::move(o), self);
}

http_server::~http_server() { stop(); }

std::vector<ports::http_route> http_server::bus_routes() {
  using ports::route_access;
  std::vector<ports::http_route> r;
  r.push_back({"GET", "/health", route_access::open,
               [](const http_request&) { return json_reply(200, R"({"status":"ok"})"); }});
  r.push_back({"GET", "/ready", route_access::open, [this](const http_request&) {
                 if (!hooks_.ready || !hooks_.ready())
                   return json_reply(503, R"({"status":"not ready"})");
                 boost::json::object body{{"status", "ready"}};
                 if (hooks_.ready_details)  // e.g. journal rows that could not be read
                   for (auto& member : hooks_.ready_details())
                     body.insert_or_assign(member.key(), std::move(member.value()));
                 return json_reply(200, boost::json::serialize(body));
               }});

  r.push_back({"GET", "/v1/openapi.json", route_access::bearer_token, [](const http_request&) {
                 return json_reply(200, std::string{openapi_document()});
               }});

  r.push_back({"POST", "/v1/events", route_access::bearer_token, [this](const http_request& req) {
                 if (!hooks_.publish)
                   return unavailable();
                 header_list ce_headers;
                 for (const auto& [name, value] : req.headers)
                   if (name.size() > 3 && (name[0] == 'c' || name[0] == 'C') &&
                       (name[1] == 'e' || name[1] == 'E') && name[2] == '-')
                     ce_headers.emplace_back(name, value);
                 auto request =
                     decode_ingest(req.header("Content-Type"), ce_headers, req.body, hooks_.limits);
                 auto answer = ingest(std::move(request), hooks_.publish, hooks_.ingest_timeout);
                 auto reply = json_reply(answer.status, std::move(answer.body));
                 if (answer.retry_after)
                   reply.headers.emplace_back("Retry-After", std::to_string(*answer.retry_after));
                 return reply;
               }});

  r.push_back(
      {"GET", "/v1/events", route_access::bearer_token, [this](const http_request& req) {
         if (!hooks_.read || !hooks_.last_sequence)
           return unavailable();
         std::uint64_t after = 0;
         std::uint64_t limit = default_page;
         if (auto bad = number_param(
                 req, "after", 0, std::numeric_limits<std::uint64_t>::max(),
                 "a non-negative integer (a journal sequence; 0 = from the start)", after))
           return *bad;
         if (auto bad =
                 number_param(req, "limit", 1, max_page, range_text(1, max_page).c_str(), limit))
           return *bad;
         // Unreadable rows are listed in their place, so that a reader can page past them.
         auto events = journal_page_json(hooks_.read(after, static_cast<std::size_t>(limit)));
         // Read after the events, so that it is at least the last one returned.
         const auto last = hooks_.last_sequence();
         return json_reply(200, boost::json::serialize(boost::json::object{
                                    {"events", std::move(events)}, {"last_sequence", last}}));
       }});

  r.push_back(
      {"GET", "/v1/dead-letters", route_access::bearer_token, [this](const http_request& req) {
         if (!hooks_.dead_letters)
           return unavailable();
         std::uint64_t limit = default_page;
         std::uint64_t after = 0;
         if (auto bad =
                 number_param(req, "limit", 1, max_page, range_text(1, max_page).c_str(), limit))
           return *bad;
         if (auto bad = number_param(req, "after", 0, std::numeric_limits<std::uint64_t>::max(),
                                     "a dead letter id (the `next` link gives it)", after))
           return *bad;
         // One more than asked: whether there is a next page.
         auto found =
             hooks_.dead_letters(req.param("consumer"), static_cast<std::size_t>(limit) + 1, after);
         const bool more = found.size() > limit;
         if (more)
           found.resize(static_cast<std::size_t>(limit));
         boost::json::array letters;
         for (const auto& d : found)
           letters.push_back(dead_letter_json(d));
         boost::json::object page{{"dead_letters", std::move(letters)}};
         if (more) {
           auto next = "/v1/dead-letters?limit=" + std::to_string(limit) +
                       "&after=" + std::to_string(found.back().id);
           if (const auto consumer = req.param("consumer"); !consumer.empty())
             next += "&consumer=" + consumer;
           page["next"] = next;
         }
         return json_reply(200, boost::json::serialize(page));
       }});

  r.push_back({"POST", R"(/v1/dead-letters/(\d+)/retry)", route_access::bearer_token,
               [this](const http_request& req) {
                 if (!hooks_.retry_dead_letter)
                   return unavailable();
                 auto id = path_id(req);
                 const auto retry = id ? hooks_.retry_dead_letter(*id) : dead_letter_retry{};
                 if (retry.status == dead_letter_retry::outcome::would_skip)
                   return error_reply(409, retry.reason);  // kept: a retry would do nothing
                 if (!retry)
                   return unknown_dead_letter(req.matches[1], "retry");
                 return json_reply(200, boost::json::serialize(boost::json::object{
                                            {"id", *id}, {"status", "retried"}}));
               }});

  r.push_back({"DELETE", R"(/v1/dead-letters/(\d+))", route_access::bearer_token,
               [this](const http_request& req) {
                 if (!hooks_.discard_dead_letter)
                   return unavailable();
                 auto id = path_id(req);
                 if (!id || !hooks_.discard_dead_letter(*id))
                   return unknown_dead_letter(req.matches[1], "discard");
                 return json_reply(200, boost::json::serialize(boost::json::object{
                                            {"id", *id}, {"status", "discarded"}}));
               }});
  return r;
}

std::optional<http_server::target> http_server::parse_target(const std::string& text) {
  auto parsed = boost::urls::parse_origin_form(text);
  if (!parsed)
    return std::nullopt;
  target t;
  t.path = std::string{parsed->path()};
  for (auto p : parsed->params())
    t.params.emplace_back(std::string{p.key}, std::string{p.value});
  return t;
}

const http_server::route* http_server::find(const std::string& method, const std::string& path,
                                            std::vector<std::string>* matches) const {
  for (const auto& r : routes_) {
    if (r.spec.method != method)
      continue;
    std::smatch m;
    if (std::regex_match(path, m, r.pattern)) {
      if (matches != nullptr)
        for (const auto& g : m)
          matches->push_back(g.str());
      return &r;
    }
  }
  return nullptr;
}

std::string http_server::methods_at(const std::string& path) const {
  std::string allow;
  for (const auto& r : routes_)
    if (std::regex_match(path, r.pattern) && allow.find(r.spec.method) == std::string::npos)
      allow += (allow.empty() ? "" : ", ") + r.spec.method;
  return allow;
}

std::optional<wire_reply> http_server::refused(const wire_request& req) const {
  using core::token_check;
  const auto check = core::check_bearer(req.header("Authorization"), hooks_.api_token);
  if (check == token_check::ok)
    return std::nullopt;
  std::string why;
  switch (check) {
    case token_check::not_configured:
      why =
          "this server has no API token configured, so /v1/ is closed: set "
          "SWITCHBOARD_API_TOKEN in the server's environment and restart it";
      break;
    case token_check::missing:
      why =
          "missing bearer token: send 'Authorization: Bearer <token>' with the server's "
          "SWITCHBOARD_API_TOKEN";
      break;
    default:
      why = "the bearer token is not the server's SWITCHBOARD_API_TOKEN; send that token";
      break;
  }
  auto reply = to_wire(error_reply(401, why));
  reply.headers.emplace_back("WWW-Authenticate",
                             check == token_check::wrong
                                 ? R"(Bearer realm="switchboard", error="invalid_token")"
                                 : R"(Bearer realm="switchboard")");
  return reply;
}

std::optional<wire_reply> http_server::screen(const wire_request& head) {
  auto t = parse_target(head.target);
  if (!t)
    return to_wire(error_reply(
        400, "the request target is not a valid path and query: " + head.target.substr(0, 200)));
  const auto* r = find(head.method, t->path, nullptr);
  // Under /v1/ nothing is told without the token, not even which routes exist.
  const bool guarded = r != nullptr ? r->spec.access == ports::route_access::bearer_token
                                    : t->path.compare(0, 4, "/v1/") == 0;
  if (guarded)
    if (auto no = refused(head))
      return no;
  if (r != nullptr)
    return std::nullopt;
  if (auto allow = methods_at(t->path); !allow.empty()) {
    auto reply = to_wire(
        error_reply(405, head.method + " is not allowed on " + t->path + "; it takes " + allow));
    reply.headers.emplace_back("Allow", allow);
    return reply;
  }
  return to_wire(error_reply(404, "no such route: " + head.method + " " + t->path));
}

wire_reply http_server::handle(wire_request request) {
  auto t = parse_target(request.target);
  http_request r;
  const route* found = t ? find(request.method, t->path, &r.matches) : nullptr;
  if (found == nullptr)  // screen() answered these already
    return to_wire(error_reply(404, "no such route: " + request.method));
  r.method = request.method;
  r.path = t->path;
  r.body = std::move(request.body);
  r.headers = std::move(request.headers);
  r.params = std::move(t->params);
  r.request_id = request.request_id;
  r.header = [&r](const std::string& name) {
    for (const auto& [n, v] : r.headers)
      if (n.size() == name.size() &&
          std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          }))
        return v;
    return std::string{};
  };
  r.param = [&r](const std::string& name) {
    const auto* v = param_of(r, name.c_str());
    return v != nullptr ? *v : std::string{};
  };
  try {
    return to_wire(found->spec.handle(r));
  } catch (...) {
    spdlog::error("http: {} {} failed: {} (request {})", r.method, r.path,
                  core::exception_text(std::current_exception()), r.request_id);
    return to_wire(
        error_reply(500, "internal error; see the server log (request " + r.request_id + ")"));
  }
}

void http_server::answered(const wire_request& head, int status, std::chrono::microseconds duration,
                           std::string_view why) {
  if (!cfg_.access_log)
    return;
  // The path only: a query string may carry what should not be in a log.
  auto path = head.target.substr(0, head.target.find('?'));
  if (path.size() > 200)
    path = path.substr(0, 200) + "...";
  const double ms = static_cast<double>(duration.count()) / 1000.0;
  const auto method = head.method.empty() ? std::string{"-"} : head.method;
  if (why.empty())
    spdlog::info("http: {} {} {} {:.1f} ms id={} peer={}", method, path.empty() ? "-" : path,
                 status, ms, head.request_id.empty() ? "-" : head.request_id, head.peer);
  else
    spdlog::info("http: {} {} {} {:.1f} ms id={} peer={}: {}", method, path.empty() ? "-" : path,
                 status, ms, head.request_id.empty() ? "-" : head.request_id, head.peer, why);
}

std::string http_server::start() {
  const auto port = listener_->start();
  auto host = cfg_.host.find(':') != std::string::npos ? "[" + cfg_.host + "]" : cfg_.host;
  return host + ":" + std::to_string(port);
}

void http_server::stop() { listener_->stop(); }

std::vector<std::pair<std::string, std::string>> http_server::route_table() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : routes_)
    out.emplace_back(r.spec.method, r.spec.pattern);
  return out;
}

}  // namespace switchboard::adapters::http
