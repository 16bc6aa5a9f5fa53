#include "adapters/http/http_server.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace switchboard::adapters::http {

namespace {

constexpr const char* json_type = "application/json";

void reply_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, json_type);
}

std::string json_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

} // namespace

http_server::http_server(http_config cfg, hooks h)
  : cfg_(std::move(cfg)), hooks_(std::move(h)), server_(std::make_unique<httplib::Server>()) {
  auto& s = *server_;
  // 0.11.4 defaults: Nagle on (40 ms stalls on keep-alive), 5 requests per connection and no
  // body limit. Fix all three.
  s.set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which lets a second daemon bind the same port
  // and silently take half the traffic. SO_REUSEADDR alone allows quick restarts.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.set_keep_alive_max_count(cfg_.keep_alive_max_count);
  s.set_payload_max_length(cfg_.max_body_bytes);
  s.set_read_timeout(cfg_.read_timeout);
  s.set_write_timeout(cfg_.write_timeout);
  auto threads = cfg_.worker_threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };

  s.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200, R"({"status":"ok"})");
  });
  s.Get("/ready", [this](const httplib::Request&, httplib::Response& res) {
    if (hooks_.ready && hooks_.ready())
      reply_json(res, 200, R"({"status":"ready"})");
    else
      reply_json(res, 503, R"({"status":"not ready"})");
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty())
      return;
    std::string what = res.status == 404   ? "no such route: " + req.method + " " + req.path
                       : res.status == 413 ? "request body too large"
                                           : "request failed";
    reply_json(res, res.status, R"({"error":")" + json_escape(what) + R"("})");
  });
  s.set_exception_handler(
    [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      spdlog::error("http: {} {} failed: {}", req.method, req.path, what);
      reply_json(res, 500, R"({"error":"internal error; see the server log"})");
    });
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
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  auto host = cfg_.host.find(':') != std::string::npos ? "[" + cfg_.host + "]" : cfg_.host;
  return host + ":" + std::to_string(port);
}

void http_server::stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

} // namespace switchboard::adapters::http
