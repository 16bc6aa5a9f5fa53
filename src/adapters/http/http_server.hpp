#pragma once

// The daemon's HTTP server (cpp-httplib): its own thread pool, never a CAF scheduler thread.
// Open: `GET /health`, `GET /ready`. Behind the bearer token (SWITCHBOARD_API_TOKEN): the bus's
// own routes, `POST /v1/events` (ingest, see ingest.hpp), `GET /v1/events` (read the journal),
// `GET /v1/dead-letters`, `POST /v1/dead-letters/{id}/retry`, `DELETE /v1/dead-letters/{id}`;
// then every job's routes (ports::http_route, e.g. jobs/propagation/routes.cpp), each behind the
// token unless the route checks its own credentials.

#include "adapters/http/ingest.hpp"
#include "adapters/http/listen_socket.hpp"
#include "ports/http_routes.hpp"
#include "switchboard/config.hpp"
#include "switchboard/dead_letters.hpp"
#include "switchboard/journal.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace switchboard::adapters::http {

class http_server {
public:
  /// What the server reaches the runtime through. A missing function makes its routes
  /// answer 503.
  struct hooks {
    std::function<bool()> ready;  ///< answers /ready: true once started, false while draining
    /// Members added to the 200 answer of /ready (e.g. unreadable journal rows); optional.
    std::function<boost::json::object()> ready_details;

    /// The bearer token every /v1/ request must present; empty = none configured, so every
    /// /v1/ request is refused with a hint to set SWITCHBOARD_API_TOKEN.
    std::string api_token;
    codec_limits limits;                               ///< for decoding ingested events
    std::chrono::milliseconds ingest_timeout{30'000};  ///< longer without durability: 503
    publish_hook publish;                              ///< runtime::publish_async
    std::function<journal_page(std::uint64_t after, std::size_t limit)> read;
    std::function<std::uint64_t()> last_sequence;
    std::function<std::vector<dead_letter_info>(const std::string& consumer, std::size_t limit)>
        dead_letters;
    std::function<bool(std::uint64_t id)> retry_dead_letter;
    std::function<bool(std::uint64_t id)> discard_dead_letter;

    /// The jobs' routes, registered after the bus's own.
    std::vector<ports::http_route> routes;
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
  void add_api_routes();
  void add_job_route(const ports::http_route& route);
  /// True if the request carries the API token; else answers 401 and returns false.
  bool authorized(const httplib::Request& req, httplib::Response& res) const;

  http_config cfg_;
  hooks hooks_;
  listen_socket listen_socket_;  // before server_, which calls into it
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace switchboard::adapters::http
