#pragma once

/// @file switchboard/runtime.hpp
/// `switchboard::runtime`: the embedding API (since 0.1). The `switchboard` daemon is just
/// another host of this class.
///
/// Delivery guarantees in 0.1 (in-memory bus, no journal yet):
/// - `publish` completes its future once the router has accepted the event and handed it to
///   every subscription whose pattern matches `type`. Nothing is durable yet: events in
///   flight when the process dies are lost.
/// - Each subscription sees events in publish order per publishing thread, one at a time.
///   Different subscriptions run in parallel.
/// - A handler that throws is logged with the event's correlation id; the event counts as
///   handled (failed) and the subscription goes on.
/// - `stop()` drains: new publishes are refused, events already accepted are handled (up to
///   the drain timeout), then the actor system shuts down.

#include "switchboard/config.hpp"
#include "switchboard/event.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>

namespace switchboard {

namespace internal {
struct runtime_access;  // switchboard's own tests reach the actor system through this
}

/// What `publish` reports once the bus has accepted an event.
struct publish_receipt {
  std::string id;                  ///< the event's id
  std::size_t subscribers = 0;     ///< how many subscriptions it was handed to
};

/// Thrown through the `publish` future (and by `publish` itself for invalid events).
class publish_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A handler for events; it runs on one of the runtime's scheduler threads, so it must not
/// block for long.
using event_handler = std::function<void(const event&)>;

/// Identifies a subscription; pass it to `runtime::unsubscribe`.
struct subscription {
  std::uint64_t id = 0;
  std::string pattern;
};

/// How a runtime ended.
struct run_outcome {
  bool failed = false;             ///< true if the root supervisor gave up
  std::string reason;              ///< why, when failed
};

class runtime {
public:
  /// Builds a runtime from a validated configuration. Nothing runs until `start()`.
  explicit runtime(config cfg);

  /// Stops (with drain) if still running.
  ~runtime();

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Starts the actor system, the supervision tree and (if enabled) the HTTP server.
  /// Throws std::runtime_error with a clear message if anything cannot start (e.g. the
  /// listen address is in use, the data directory cannot be created).
  void start();

  /// Publishes an event. Missing `time` is set to now. Invalid events (missing required
  /// attributes) make the future fail with `publish_error` naming the field. After `stop()`
  /// began, the future fails with `publish_error("runtime is stopping")`.
  std::future<publish_receipt> publish(event ev);

  /// Subscribes `handler` to events whose type matches `pattern`: an exact type
  /// (`application.status_changed`), a prefix wildcard (`application.*`, which matches
  /// `application.created` and `application.status.changed`) or `*` for all. Throws
  /// std::invalid_argument for malformed patterns. The subscription is active when this
  /// returns.
  subscription subscribe(const std::string& pattern, event_handler handler);

  /// Removes a subscription; events already handed to it are still handled.
  void unsubscribe(const subscription& sub);

  /// Blocks until `request_stop()` is called or the runtime fails, and says which.
  run_outcome wait();

  /// Asks `wait()` to return; safe to call from any thread, e.g. a signal-watching one.
  void request_stop();

  /// Drains and stops. Idempotent. Returns how it ended.
  run_outcome stop();

  /// `HOST:PORT` the HTTP server listens on (the real port when configured as 0), or "" when
  /// the HTTP server is disabled or not started.
  std::string listen_address() const;

  /// The configuration the runtime runs with.
  const config& configuration() const;

private:
  friend struct internal::runtime_access;
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace switchboard
