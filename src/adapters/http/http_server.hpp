#pragma once

// The daemon's HTTP API: routes and authentication on top of http_listener (the connections).
// Open: `GET /health`, `GET /ready`. Behind the bearer token (SWITCHBOARD_API_TOKEN): the bus's
// own routes, `POST /v1/events` (ingest, see ingest.hpp), `GET /v1/events` (read the journal),
// `GET /v1/dead-letters`, `POST /v1/dead-letters/{id}/retry`, `DELETE /v1/dead-letters/{id}`;
// then every job's routes (ports::http_route, e.g. jobs/propagation/routes.cpp), each behind the
// token unless the route checks its own credentials.
//
// The token is checked as soon as a request's header is in, before its body is read or inflated:
// a request without it costs the server its header and nothing more. So does a request for a
// route that does not exist (404; 401 under /v1/ without the token, which names no routes) or
// with a method the route does not take (405 with `Allow`).

#include "adapters/http/http_listener.hpp"
#include "adapters/http/ingest.hpp"
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
#include <regex>
#include <string>
#include <vector>

namespace switchboard::adapters::http {

class http_server final : private request_handler {
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
    /// Dead letters oldest first, with id > after_id.
    std::function<std::vector<dead_letter_info>(const std::string& consumer, std::size_t limit,
                                                std::uint64_t after_id)>
        dead_letters;
    std::function<dead_letter_retry(std::uint64_t id)> retry_dead_letter;
    std::function<bool(std::uint64_t id)> discard_dead_letter;

    /// The jobs' routes, registered after the bus's own.
    std::vector<ports::http_route> routes;
  };

  http_server(http_config cfg, hooks h);
  ~http_server() override;

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds and starts serving. Returns `HOST:PORT` with the real port. Throws
  /// std::runtime_error naming the address if it cannot listen.
  std::string start();

  /// Stops accepting, finishes requests in progress and joins the server's threads. Idempotent.
  void stop();

  /// Every route served, as (method, path pattern), in the order they are matched.
  std::vector<std::pair<std::string, std::string>> route_table() const;

private:
  struct route {
    ports::http_route spec;
    std::regex pattern;
  };
  /// A request's target, split and decoded.
  struct target {
    std::string path;
    std::vector<std::pair<std::string, std::string>> params;
  };

  std::vector<ports::http_route> bus_routes();
  /// The route for this method and path (its groups in `matches`), or nullptr.
  const route* find(const std::string& method, const std::string& path,
                    std::vector<std::string>* matches) const;
  /// The methods some route takes at this path (for 405's Allow), "" when none.
  std::string methods_at(const std::string& path) const;
  /// The 401 for a request without the API token, or nullopt when it carries it.
  std::optional<wire_reply> refused(const wire_request& req) const;
  static std::optional<target> parse_target(const std::string& text);

  std::optional<wire_reply> screen(const wire_request& head) override;
  wire_reply handle(wire_request request) override;
  void answered(const wire_request& head, int status, std::chrono::microseconds duration,
                std::string_view why) override;

  http_config cfg_;
  hooks hooks_;
  std::vector<route> routes_;
  std::unique_ptr<http_listener> listener_;
};

}  // namespace switchboard::adapters::http
