#include "adapters/http/http_server.hpp"

#include "adapters/http/elastic_pool.hpp"
#include "adapters/http/listen_socket.hpp"

#include "core/auth.hpp"
#include "core/exception_text.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <thread>

namespace switchboard::adapters::http {

namespace {

constexpr const char* json_type = "application/json";

void reply_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, json_type);
}

void reply_error(httplib::Response& res, int status, const std::string& error) {
  reply_json(res, status, boost::json::serialize(boost::json::object{{"error", error}}));
}

constexpr std::size_t default_page = 100;
constexpr std::size_t max_page = 1000;

/// Reads an optional unsigned query parameter in [min, max]; on a bad value answers 400
/// naming the parameter and returns false.
bool number_param(const httplib::Request& req, httplib::Response& res, const char* name,
                  std::uint64_t min, std::uint64_t max, const char* meaning, std::uint64_t& out) {
  if (!req.has_param(name))
    return true;
  const auto text = req.get_param_value(name);
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (!text.empty() && ec == std::errc{} && end == text.data() + text.size() && v >= min &&
      v <= max) {
    out = v;
    return true;
  }
  const auto shown = text.size() > 64 ? text.substr(0, 64) + "..." : text;
  reply_error(
      res, 400,
      std::string{"query parameter '"} + name + "': must be " + meaning + ", got '" + shown + "'");
  return false;
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

std::optional<std::uint64_t> path_id(const httplib::Request& req) {
  if (req.matches.size() < 2)
    return std::nullopt;
  const auto text = req.matches[1].str();
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return v;
}

void reply_unknown_dead_letter(httplib::Response& res, const std::string& id, const char* verb) {
  reply_error(res, 404,
              "no dead letter with id " + id + " to " + verb +
                  (std::string{verb} == "retry"
                       ? " (or its named subscription is not running in this process)"
                       : "") +
                  "; list them with GET /v1/dead-letters");
}

}  // namespace

http_server::http_server(http_config cfg, hooks h)
    : cfg_(std::move(cfg)), hooks_(std::move(h)), server_(std::make_unique<httplib::Server>()) {
  auto& s = *server_;
  // 0.11.4 defaults: Nagle on (40 ms stalls on keep-alive), 5 requests per connection and no
  // body limit. Fix all three.
  s.set_tcp_nodelay(true);
  s.set_socket_options(listen_socket_.options());  // SO_REUSEADDR only (listen_socket.hpp)
  s.set_keep_alive_max_count(cfg_.keep_alive_max_count);
  s.set_payload_max_length(cfg_.max_body_bytes);
  s.set_read_timeout(cfg_.read_timeout);
  s.set_write_timeout(cfg_.write_timeout);
  // A thread per kept-alive connection, started when one arrives and none is free: 32 clients
  // get 32 threads without tuning, and an idle server keeps 4.
  auto threads = cfg_.worker_threads;
  s.new_task_queue = [threads] { return new elastic_pool(threads, 4); };

  s.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200, R"({"status":"ok"})");
  });
  s.Get("/ready", [this](const httplib::Request&, httplib::Response& res) {
    if (hooks_.ready && hooks_.ready()) {
      boost::json::object body{{"status", "ready"}};
      if (hooks_.ready_details)
        for (auto& member : hooks_.ready_details())
          body.insert_or_assign(member.key(), std::move(member.value()));
      reply_json(res, 200, boost::json::serialize(body));
    } else
      reply_json(res, 503, R"({"status":"not ready"})");
  });
  add_api_routes();
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty())
      return;
    std::string what = res.status == 404   ? "no such route: " + req.method + " " + req.path
                       : res.status == 413 ? "request body too large"
                                           : "request failed";
    reply_error(res, res.status, what);
  });
  s.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        spdlog::error("http: {} {} failed: {}", req.method, req.path, core::exception_text(ep));
        reply_json(res, 500, R"({"error":"internal error; see the server log"})");
      });
}

bool http_server::authorized(const httplib::Request& req, httplib::Response& res) const {
  using core::token_check;
  const auto check = core::check_bearer(req.get_header_value("Authorization"), hooks_.api_token);
  if (check == token_check::ok)
    return true;
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
  res.set_header("WWW-Authenticate", check == token_check::wrong
                                         ? R"(Bearer realm="switchboard", error="invalid_token")"
                                         : R"(Bearer realm="switchboard")");
  reply_error(res, 401, why);
  return false;
}

void http_server::add_api_routes() {
  auto& s = *server_;
  // Every /v1/ handler checks the token first. (A pre-routing handler would answer before
  // cpp-httplib reads the body, which leaves the body in a kept-alive connection.)
  auto guarded = [this](auto handler) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      if (authorized(req, res))
        handler(req, res);
    };
  };
  auto unavailable = [](httplib::Response& res) {
    reply_error(res, 503, "this server does not serve this API (no runtime attached)");
  };

  s.Post("/v1/events",
         guarded([this, unavailable](const httplib::Request& req, httplib::Response& res) {
           if (!hooks_.publish)
             return unavailable(res);
           header_list ce_headers;
           for (const auto& [name, value] : req.headers)
             if (name.size() > 3 && (name[0] == 'c' || name[0] == 'C') &&
                 (name[1] == 'e' || name[1] == 'E') && name[2] == '-')
               ce_headers.emplace_back(name, value);
           auto request = decode_ingest(req.get_header_value("Content-Type"), ce_headers, req.body,
                                        hooks_.limits);
           auto answer = ingest(std::move(request), hooks_.publish, hooks_.ingest_timeout);
           if (answer.retry_after)
             res.set_header("Retry-After", std::to_string(*answer.retry_after));
           reply_json(res, answer.status, answer.body);
         }));

  s.Get("/v1/events",
        guarded([this, unavailable](const httplib::Request& req, httplib::Response& res) {
          if (!hooks_.read || !hooks_.last_sequence)
            return unavailable(res);
          std::uint64_t after = 0;
          std::uint64_t limit = default_page;
          if (!number_param(req, res, "after", 0, std::numeric_limits<std::uint64_t>::max(),
                            "a non-negative integer (a journal sequence; 0 = from the start)",
                            after) ||
              !number_param(req, res, "limit", 1, max_page, range_text(1, max_page).c_str(), limit))
            return;
          // Unreadable rows are listed in their place, so that a reader can page past them.
          auto events = journal_page_json(hooks_.read(after, static_cast<std::size_t>(limit)));
          // Read after the events, so that it is at least the last one returned.
          const auto last = hooks_.last_sequence();
          reply_json(res, 200,
                     boost::json::serialize(boost::json::object{{"events", std::move(events)},
                                                                {"last_sequence", last}}));
        }));

  s.Get("/v1/dead-letters",
        guarded([this, unavailable](const httplib::Request& req, httplib::Response& res) {
          if (!hooks_.dead_letters)
            return unavailable(res);
          std::uint64_t limit = default_page;
          if (!number_param(req, res, "limit", 1, max_page, range_text(1, max_page).c_str(), limit))
            return;
          boost::json::array letters;
          for (const auto& d : hooks_.dead_letters(req.get_param_value("consumer"),
                                                   static_cast<std::size_t>(limit)))
            letters.push_back(dead_letter_json(d));
          reply_json(
              res, 200,
              boost::json::serialize(boost::json::object{{"dead_letters", std::move(letters)}}));
        }));

  s.Post(R"(/v1/dead-letters/(\d+)/retry)",
         guarded([this, unavailable](const httplib::Request& req, httplib::Response& res) {
           if (!hooks_.retry_dead_letter)
             return unavailable(res);
           auto id = path_id(req);
           if (!id || !hooks_.retry_dead_letter(*id))
             return reply_unknown_dead_letter(res, req.matches[1].str(), "retry");
           reply_json(
               res, 200,
               boost::json::serialize(boost::json::object{{"id", *id}, {"status", "retried"}}));
         }));

  s.Delete(R"(/v1/dead-letters/(\d+))",
           guarded([this, unavailable](const httplib::Request& req, httplib::Response& res) {
             if (!hooks_.discard_dead_letter)
               return unavailable(res);
             auto id = path_id(req);
             if (!id || !hooks_.discard_dead_letter(*id))
               return reply_unknown_dead_letter(res, req.matches[1].str(), "discard");
             reply_json(
                 res, 200,
                 boost::json::serialize(boost::json::object{{"id", *id}, {"status", "discarded"}}));
           }));

  for (const auto& route : hooks_.routes)
    add_job_route(route);
}

void http_server::add_job_route(const ports::http_route& route) {
  auto handle = [this, route](const httplib::Request& req, httplib::Response& res) {
    if (route.access == ports::route_access::bearer_token && !authorized(req, res))
      return;
    ports::http_request r;
    r.method = req.method;
    r.path = req.path;
    r.body = req.body;
    for (const auto& m : req.matches)
      r.matches.push_back(m.str());
    r.header = [&req](const std::string& name) { return req.get_header_value(name.c_str()); };
    r.param = [&req](const std::string& name) { return req.get_param_value(name.c_str()); };
    auto reply = route.handle(r);
    for (const auto& [name, value] : reply.headers)
      res.set_header(name.c_str(), value);
    res.status = reply.status;
    res.set_content(reply.body, reply.content_type.c_str());
  };
  auto& s = *server_;
  if (route.method == "GET")
    s.Get(route.pattern, handle);
  else if (route.method == "POST")
    s.Post(route.pattern, handle);
  else if (route.method == "DELETE")
    s.Delete(route.pattern, handle);
  else if (route.method == "PUT")
    s.Put(route.pattern, handle);
  else
    throw std::invalid_argument("http_server: route " + route.pattern + " has an unknown method " +
                                route.method);
}

http_server::~http_server() { stop(); }

std::string http_server::start() {
  int port = cfg_.port;
  bool bound = false;
  errno = 0;
  if (port == 0) {
    port = server_->bind_to_any_port(cfg_.host);
    bound = port > 0;
  } else {
    bound = server_->bind_to_port(cfg_.host, port);
  }
  if (!bound) {
    auto reason = errno != 0 ? std::string{std::strerror(errno)} : "bind failed";
    throw std::runtime_error("cannot listen on " + cfg_.host + ":" + std::to_string(cfg_.port) +
                             ": " + reason +
                             " (pick a free port with --listen HOST:PORT, or :0 for any)");
  }
  listen_socket_.widen_backlog();
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() does nothing until the server runs, so a stop() right after start()
  // would leave listen_after_bind() blocked forever. Return only once it is running (the
  // socket already accepts connections, so this is a matter of microseconds).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server_->is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  if (!server_->is_running()) {
    server_->stop();
    thread_.join();
    throw std::runtime_error("the HTTP server on " + cfg_.host + ":" + std::to_string(port) +
                             " did not start listening");
  }
  auto host = cfg_.host.find(':') != std::string::npos ? "[" + cfg_.host + "]" : cfg_.host;
  return host + ":" + std::to_string(port);
}

void http_server::stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace switchboard::adapters::http
