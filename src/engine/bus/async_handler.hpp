#pragma once

// A subscription handler that finishes on another thread. The bus's partitions run a plain
// event_handler in place, on a CAF scheduler thread; an `async_event_handler` stored in the
// event_handler instead (the bus finds it with std::function::target) is started there and
// returns at once, and the partition waits for its `done` (as a message) before the next
// event: per-partition order, retries and the at-least-once ack stay the bus's. For handlers
// whose work blocks (SQLite), which then runs on the handler's own lanes.

#include "switchboard/event.hpp"

#include <exception>
#include <functional>
#include <string>

namespace switchboard::actors {

struct async_event_handler {
  /// How the event ended: null if handled, else what it threw (a terminal_error parks it).
  using done_fn = std::function<void(std::exception_ptr)>;

  /// Starts handling `ev`; must not block. Calls `done` exactly once, from any thread.
  std::function<void(event_ptr ev, done_fn done)> start;
  /// The same work, waited for: for callers of the plain event_handler.
  std::function<void(const event&)> wait;

  /// Optional: why handling `ev` now would be skipped without effect (e.g. the entity's stored
  /// state is newer), or "" if it would be handled. Asked before a dead letter is retried, so
  /// that the retry does not answer "retried" and then do nothing. May block briefly (a read).
  std::function<std::string(const event&)> skip_reason;

  void operator()(const event& ev) const { wait(ev); }
};

}  // namespace switchboard::actors
