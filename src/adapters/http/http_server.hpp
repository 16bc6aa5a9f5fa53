#pragma once

// The daemon's HTTP server (cpp-httplib): its own thread pool, never a CAF scheduler thread.
// 0.1 serves `GET /health` and `GET /ready`; later changes add ingest, webhooks and admin.

#include "switchboard/config.hpp"

#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace switchboard::adapters::http {

class http_server {
public:
  struct hooks {
    std::function<bool()> ready;  ///< answers /ready: true once started, false while draining
  };

  http_server(http_config cfg, hooks h);
  ~http_server();

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds and starts serving. Returns `HOST:PORT` with the real port. Throws
  /// std::runtime_error naming the address if it cannot listen.
  std::string start();

  /// Stops accepting, finishes requests in progress and joins the server thread. Idempotent.
  void stop();

private:
  http_config cfg_;
  hooks hooks_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

} // namespace switchboard::adapters::http
