#pragma once

// A RabbitMQ queue as a source of events (sources.amqp): one dedicated thread owns the
// connection, declares the topology, consumes, decodes each delivery (core/masstransit) and
// hands the event to the journal through `publish_fn`.
//
// Guarantees:
// - A delivery is acknowledged only after its event is durable (accepted or a duplicate), or
//   after an undecodable message has been confirmed by the broker in the error queue. Acks go
//   out in groups (`multiple`), up to the highest delivery whose predecessors are all done.
// - At least once: deliveries not yet acknowledged when the connection drops are redelivered
//   by the broker; the journal deduplicates them by id (the MassTransit `messageId`).
// - A failed journal write is never acknowledged: the source drops the connection and
//   reconnects after a backoff, so the broker redelivers.
// - Undecodable or unmapped messages go to the error queue (persistent, publisher-confirmed)
//   with `MT-Reason` = "switchboard: <why>" and are then acknowledged: never lost, never looping.

#include "ports/event_source.hpp"
#include "switchboard/config.hpp"
#include "switchboard/event.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace switchboard::adapters::amqp {

// The port's vocabulary (ports/event_source.hpp); the names stay usable here.
using ports::publish_done;
using ports::publish_fn;
using amqp_source_stats = ports::event_source_stats;

class amqp_source final : public ports::event_source {
public:
  /// Nothing connects before `start()`. `password` comes from SWITCHBOARD_AMQP_PASSWORD.
  /// `stop_timeout` bounds how long `stop()` waits for the journal to confirm deliveries
  /// already handed on.
  amqp_source(amqp_source_config cfg, std::string password, codec_limits limits, publish_fn publish,
              std::chrono::milliseconds stop_timeout = std::chrono::seconds(5));
  /// Stops if running.
  ~amqp_source() override;

  amqp_source(const amqp_source&) = delete;
  amqp_source& operator=(const amqp_source&) = delete;

  /// Starts the source's thread; returns at once. Connection problems are retried with
  /// backoff forever (see `stats().last_error`), never thrown.
  void start() override;

  /// Stops consuming, waits (up to the stop timeout) for events already handed to the
  /// journal, acknowledges those that became durable, and closes the connection. Deliveries
  /// not acknowledged stay in the queue. Idempotent; blocks until the thread has ended.
  void stop() override;

  amqp_source_stats stats() const override;

  const amqp_source_config& configuration() const;

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace switchboard::adapters::amqp
