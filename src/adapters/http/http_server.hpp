#pragma once

// The daemon's HTTP server (cpp-httplib): its own thread pool, never a CAF scheduler thread.
// Open: `GET /health`, `GET /ready`. Behind the bearer token (SWITCHBOARD_API_TOKEN):
// `POST /v1/events` (ingest, see ingest.hpp), `GET /v1/events` (read the journal),
// `GET /v1/dead-letters`, `POST /v1/dead-letters/{id}/retry`, `DELETE /v1/dead-letters/{id}`;
// entity state: `POST /v1/rebuild`, `GET /v1/rebuild/{id}`, `GET /v1/state/{kind}/{id}`,
// `GET /v1/propagation`; lead conversations (keyed services): `POST /v1/{service}/{key}/{handler}`,
// `POST /v1/leads`, `POST /v1/form-leads`, `GET /v1/{service}/{key}`, `GET /v1/invocations`;
// `POST /v1/webhooks/twilio/conversations` (X-Twilio-Signature instead of the bearer token).

#include "adapters/http/ingest.hpp"
#include "switchboard/config.hpp"
#include "switchboard/runtime.hpp"

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
}

namespace switchboard::adapters::http {

class http_server {
public:
  /// What the server reaches the runtime through. A missing function makes its routes
  /// answer 503.
  struct hooks {
    std::function<bool()> ready;  ///< answers /ready: true once started, false while draining

    /// The bearer token every /v1/ request must present; empty = none configured, so every
    /// /v1/ request is refused with a hint to set SWITCHBOARD_API_TOKEN.
    std::string api_token;
    codec_limits limits;                               ///< for decoding ingested events
    std::chrono::milliseconds ingest_timeout{30'000};  ///< longer without durability: 503
    publish_hook publish;                              ///< runtime::publish_async
    std::function<std::vector<event>(std::uint64_t after, std::size_t limit)> read;
    std::function<std::uint64_t()> last_sequence;
    std::function<std::vector<dead_letter_info>(const std::string& consumer, std::size_t limit)>
        dead_letters;
    std::function<bool(std::uint64_t id)> retry_dead_letter;
    std::function<bool(std::uint64_t id)> discard_dead_letter;

    /// Entity-state propagation; all empty when it is not configured (routes answer 404).
    std::function<std::string(const std::string& kind, const std::string& id)> rebuild;
    std::function<std::optional<rebuild_progress>(const std::string& id)> rebuild_status;
    std::function<std::optional<boost::json::value>(const std::string& kind, const std::string& id)>
        entity_state;
    std::function<boost::json::value()> propagation_status;

    /// Lead conversations and form leads (since 0.4); empty when not configured (404).
    std::function<keyed_answer(const keyed_request&)> invoke;
    std::function<keyed_answer(const std::vector<std::pair<std::string, std::string>>& params,
                               const std::string& signature)>
        conversations_webhook;
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
  template <class Guard>
  void add_state_routes(Guard guarded);
  template <class Guard>
  void add_lead_routes(Guard guarded);
  /// True if the request carries the API token; else answers 401 and returns false.
  bool authorized(const httplib::Request& req, httplib::Response& res) const;

  http_config cfg_;
  hooks hooks_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

/// Hooks that serve the /v1/ API from `rt`'s public members, with its codec limits and the
/// token read from SWITCHBOARD_API_TOKEN now (a warning is logged when it is unset). `ready`
/// is left for the caller. `rt` must outlive the server.
http_server::hooks runtime_hooks(runtime& rt);

} // namespace switchboard::adapters::http
