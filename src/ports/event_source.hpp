#pragma once

// A source of events from outside (a broker's queue) that hands each one to the journal, as a
// port: `publish_fn` is how it hands them on, `event_source` how its owner starts, stops and
// watches it. adapters/amqp/source implements it for RabbitMQ (`sources.amqp`).
//
// What every source guarantees: at least once. A message is acknowledged to its broker only
// after its event is durable in the journal (`publish_done` with `durable` = true); anything
// not acknowledged is delivered again, and the journal deduplicates by (source, id).

#include "switchboard/event.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace switchboard::ports {

/// Called (on any thread, once) when the event handed to `publish_fn` is durable
/// (`durable` = true: accepted or duplicate) or was not stored (`error` says why).
using publish_done = std::function<void(bool durable, const std::string& error)>;

/// Hands one event to the journal; must not block. `runtime::publish_async` adapted.
using publish_fn = std::function<void(event, publish_done)>;

/// Counters of one source since `start()`.
struct event_source_stats {
  std::uint64_t delivered = 0;       ///< deliveries received (redeliveries included)
  std::uint64_t acked = 0;           ///< deliveries acknowledged to the broker
  std::uint64_t to_error_queue = 0;  ///< undecodable messages the broker confirmed in the error
                                     ///< queue
  std::uint64_t reconnects = 0;      ///< connections established after the first
  bool connected = false;            ///< consuming right now
  std::string last_error;            ///< the last connection or journal problem, "" if none
};

class event_source {
public:
  virtual ~event_source() = default;

  /// Starts the source's own thread; returns at once. Connection problems are retried with
  /// backoff forever (see `stats().last_error`), never thrown.
  virtual void start() = 0;

  /// Stops consuming, waits (up to the source's stop timeout) for events already handed to
  /// the journal, acknowledges those that became durable, and disconnects. Idempotent; blocks
  /// until the source's thread has ended.
  virtual void stop() = 0;

  /// Thread-safe.
  virtual event_source_stats stats() const = 0;
};

}  // namespace switchboard::ports
