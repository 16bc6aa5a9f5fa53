#pragma once

// The durable bus: consumers that read the journal.
//
// After each commit the journal writer appends the new events to the `journal_tail` (a
// bounded in-memory window of the most recent events) and wakes every consumer. A consumer
// reads from its cursor: from the tail when it can, from disk (through the journal reader
// thread) when it has fallen behind the tail. It filters by pattern, hands matching
// events to its partitions (by a stable hash of entity kind + id) within its credit, and
// saves its checkpoint as the lowest unfinished sequence advances.
//
// A partition runs one event at a time. When an event fails and waits for its retry, only its
// entity is held: that entity's later events queue behind it (per-entity order), the
// partition's other entities go on, and once the event is handled or dead-lettered the entity
// goes on too. Storage failures (ports::store_error that is retryable: disk full, I/O error,
// busy database) back off longer than the subscription's policy (from 500 ms, doubling, capped
// at 5 s), so that a disk full for a second or two dead-letters nothing. Held events count
// against the consumer's credit (max_in_flight) until they are done.
//
// A consumer's partitions are linked to it: if a partition fails, the consumer fails and its
// supervisor restarts it from the last progress, so at-least-once holds.

#include "core/type_pattern.hpp"
#include "engine/journal/journal.hpp"
#include "protocols/messages.hpp"
#include "switchboard/subscription.hpp"

#include <caf/actor_addr.hpp>
#include <caf/actor_cast.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace switchboard::actors {

/// The most recent committed events, shared by the writer thread (appends) and consumers
/// (reads). Sequences are contiguous, so an event is found by its offset from `first`.
class journal_tail {
public:
  explicit journal_tail(std::size_t capacity, std::uint64_t last_sequence);

  /// Appends committed events (in sequence order) and wakes the registered consumers.
  void append(std::vector<event_ptr> events);

  enum class read_status { ok, evicted };
  /// Appends to `out` up to `max` events with sequence > `after`. `evicted` if the first of
  /// them is no longer in memory (read it from disk).
  read_status read(std::uint64_t after, std::size_t max, std::vector<event_ptr>& out) const;

  std::uint64_t last_sequence() const;

  void add_listener(const consumer_actor& c);
  void remove_listener(const caf::actor_addr& c);

private:
  mutable std::mutex mu_;
  std::size_t capacity_;
  std::deque<event_ptr> events_;
  std::uint64_t first_ = 1;  // sequence of events_.front()
  std::uint64_t last_ = 0;
  std::vector<consumer_actor> listeners_;
};

/// One subscription as the runtime records it; shared with the consumer that serves it and
/// kept across the consumer's restarts.
struct subscription_entry {
  std::uint64_t id = 0;
  subscription_options options;
  core::type_pattern pattern;
  event_handler handler;
  bool durable = false;                                  // named: checkpointed in the journal
  std::atomic<std::uint64_t> progress{0};                // every sequence <= this is done
  std::atomic<std::uint64_t> restart_after{UINT64_MAX};  // replay request, else UINT64_MAX

  subscription_entry(std::uint64_t id_, subscription_options opts, core::type_pattern p,
                     event_handler h)
      : id(id_),
        options(std::move(opts)),
        pattern(std::move(p)),
        handler(std::move(h)),
        durable(!options.name.empty()) {}

  /// The consumer name used for checkpoints and dead letters.
  std::string consumer_name() const {
    return durable ? options.name : "ephemeral-" + std::to_string(id);
  }

  void set_current(const consumer_actor& c) {
    std::lock_guard<std::mutex> guard{mu};
    current = c.address();
  }
  consumer_actor get_current() const {
    std::lock_guard<std::mutex> guard{mu};
    return caf::actor_cast<consumer_actor>(current);
  }

private:
  mutable std::mutex mu;
  caf::actor_addr current;  // weak: the entry must not keep its consumer alive
};

/// What every consumer needs from the runtime.
struct bus_context {
  std::shared_ptr<journal_tail> tail;
  std::shared_ptr<journal_writer> writer;
  std::shared_ptr<journal_reader> reader;
  std::shared_ptr<unreadable_rows> unreadable;  ///< may be null (then nothing is recorded)
};

/// A child spec for the consumer of `entry`.
child_spec consumer_child(std::shared_ptr<subscription_entry> entry,
                          std::shared_ptr<const bus_context> ctx);

/// Which partition of `n` serves an entity: stable across runs and platforms.
std::size_t partition_of(const std::string& kind, const std::string& id, std::size_t n);
/// The partition of an event: by its entity, or by its source and id when it names none.
inline std::size_t partition_for(const event& ev, std::size_t n) {
  return ev.entity_kind.empty() && ev.entity_id.empty()
             ? partition_of(ev.source, ev.id, n)
             : partition_of(ev.entity_kind, ev.entity_id, n);
}

}  // namespace switchboard::actors
