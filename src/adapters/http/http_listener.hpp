#pragma once

// The daemon's HTTP/1.1 connections (Boost.Beast on one Asio I/O thread), kept apart from what
// the requests mean (http_server.cpp routes and authenticates them).
//
// What a hostile or careless client cannot do to it:
// - hold a thread: connections are asynchronous, so idle keep-alive connections and clients that
//   send a byte a second cost a socket and a buffer, not a worker. Handlers run on a worker pool
//   that grows with requests in progress, not with connections;
// - take unbounded memory: the request line and headers are capped (`max_header_bytes`, 431), the
//   body is capped whether sent with Content-Length or chunked (`max_body_bytes`, 413), and a
//   compressed body is inflated only after the request was screened (authenticated), into at most
//   `max_body_bytes`;
// - hold a connection open: the header must be complete within `read_timeout` of the connection
//   waiting for it, a body must keep arriving (no gap over `read_timeout`), an answer must be taken
//   within `write_timeout`, and at most `max_connections` are open at once (the next is answered
//   503 and closed).
// Every answer carries `X-Request-Id` (the client's, or a new one). Pipelined requests are
// answered in order. A request without Content-Length or Transfer-Encoding has an empty body
// (RFC 9112 6.3), so a bare `curl -X POST` is an empty POST.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::adapters::http {

/// One request as read off the wire.
struct wire_request {
  std::string method;  ///< as sent, e.g. "POST"
  std::string target;  ///< the request target, path and query, undecoded
  std::vector<std::pair<std::string, std::string>> headers;  ///< as received, in order
  std::string body;        ///< decoded: after Content-Encoding, never over max_body_bytes
  std::string peer;        ///< the client's address, for the log
  std::string request_id;  ///< the client's X-Request-Id if usable, else a new one; echoed back

  /// The first header of that name (case-insensitive), or "" when absent.
  std::string header(std::string_view name) const;
};

/// One answer.
struct wire_reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  ///< close the connection after this answer
};

/// What the listener asks of the code that gives requests their meaning.
class request_handler {
public:
  virtual ~request_handler() = default;

  /// Called on the I/O thread once a request's header is in, before its body is read: a reply
  /// here is sent at once, the body is never read and the connection closes (an unknown route,
  /// a missing token). Must not block.
  virtual std::optional<wire_reply> screen(const wire_request& head) = 0;

  /// Called on a worker thread with the whole request; may block (a handler waiting for data
  /// to be on disk).
  virtual wire_reply handle(wire_request request) = 0;

  /// Called once an answer is written (or the attempt failed), on the I/O thread: for the access
  /// log. `duration` runs from the header's arrival.
  virtual void answered(const wire_request& head, int status, std::chrono::microseconds duration,
                        std::string_view why) = 0;
};

struct listener_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  ///< 0 = any free port
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::size_t max_connections = 10'000;
  std::size_t keep_alive_max_count = 10'000;  ///< requests per connection
  std::chrono::milliseconds read_timeout{5'000};
  std::chrono::milliseconds write_timeout{5'000};
  std::size_t worker_threads = 256;  ///< requests handled at once
};

class http_listener {
public:
  http_listener(listener_options options, request_handler& handler);
  ~http_listener();
  http_listener(const http_listener&) = delete;
  http_listener& operator=(const http_listener&) = delete;

  /// Binds (SO_REUSEADDR, never SO_REUSEPORT: a second server cannot share the port), listens
  /// and starts the I/O thread. Returns the real port. Throws std::runtime_error naming the
  /// address and the reason when it cannot listen.
  std::uint16_t start();

  /// Stops accepting, closes connections between requests, lets requests in progress finish and
  /// answer (with `Connection: close`), then joins every thread. Idempotent.
  void stop();

  /// Connections open now (for tests and figures).
  std::size_t connections() const;

  struct state;  ///< the I/O context, acceptor, sessions and workers (http_listener.cpp)

private:
  std::unique_ptr<state> state_;
};

}  // namespace switchboard::adapters::http
