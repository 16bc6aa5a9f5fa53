#pragma once

/// @file switchboard/subscription.hpp
/// Subscriptions: what a consumer receives and how it retries (since 0.1; its own header
/// since 0.4).
///
/// Delivery is at least once: a subscription sees every matching event committed after its
/// starting point, in journal order per entity. A named (durable) subscription keeps a
/// checkpoint and after a restart gets every event past it again, so handlers must be
/// idempotent (deduplicate by `sequence` or by `id`).

#include "switchboard/event.hpp"
#include "switchboard/export.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace switchboard {

/// Thrown by a handler for a failure that retrying cannot fix: the event is parked as a dead
/// letter at once.
class SWITCHBOARD_API terminal_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// How a subscription retries a failing handler. While an event waits for its retry, only its
/// entity waits: that entity's later events queue behind it, in order, and the other entities
/// (of the same partition too) go on; once the event is handled or parked, its entity goes on.
struct retry_policy {
  std::size_t max_attempts = 5;           ///< attempts in all, including the first
  std::chrono::milliseconds initial{50};  ///< delay before the first retry
  std::chrono::milliseconds max{5'000};   ///< cap of the doubling delay
  double jitter = 0.2;                    ///< each delay is scaled by 1 ± jitter at random
};

/// What a subscription consumes and how.
struct subscription_options {
  std::string pattern;               ///< `a.b`, `a.*` or `*`
  std::string name;                  ///< durable consumer name (checkpointed); "" = ephemeral,
                                     ///< starting at the journal's end, not checkpointed
  std::size_t partitions = 1;        ///< parallel lanes; one entity always uses the same lane
  std::size_t max_in_flight = 1024;  ///< credit: events handed on but not yet done (events
                                     ///< waiting for a retry, and their entity's later
                                     ///< events, hold theirs until done)
  retry_policy retry;
  bool drop_stale_versions = false;  ///< skip events whose entityversion is older than the
                                     ///< last one applied for the same entity
};

/// A handler for events; it runs on one of the runtime's scheduler threads, so it must not
/// block for long. Throwing means failure (see `retry_policy`, `terminal_error`).
using event_handler = std::function<void(const event&)>;

/// Identifies a subscription; pass it to `runtime::unsubscribe`.
struct subscription {
  std::uint64_t id = 0;
  std::string pattern;
};

}  // namespace switchboard
