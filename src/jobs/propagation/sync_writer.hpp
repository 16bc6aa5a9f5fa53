#pragma once

// The sync writer of one target: writes the latest state of each entity of the target's kind
// to Twilio (Sync documents, Sync map items, TaskRouter worker attributes).
//
// Pieces:
// - `sync_writer` (this class) lives as long as the target: it owns the I/O lanes, the stats
//   and the link to the current writer actor. Create it once, put `child()` under a
//   supervisor, call `notify()` after every stored state change.
// - The writer actor (event-based, restarted by its supervisor) holds the write schedule
//   (core/write_schedule.hpp): coalescing, per-object pacing, retries, dead writes.
// - I/O lanes: `io_threads` threads, each with its own Twilio client. All jobs of one entity
//   go to one lane (by hash of its id) and run in order, so writes to one object never overlap
//   or reorder, even across actor restarts. Each job loads the entity's NEWEST state from the
//   store, so a write never sets an object back to an older state than one already written.
//
// Guarantees: at least once per (entity, newest revision): after a crash or restart, the actor
// pages through `write_ledger::unwritten` and writes what is missing; repeating a write is
// harmless (it sets the whole state). A revision is recorded as written (mark_written) only after
// Twilio confirmed it, and as dead (mark_dead, with the last error) after `max_attempts` or a
// terminal answer; a newer revision starts afresh.

#include "ports/entity_states.hpp"
#include "ports/twilio.hpp"
#include "protocols/messages.hpp"
#include "switchboard/config.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace switchboard::actors {

/// A target's counters since its writer was created (not reset by actor restarts).
struct sync_writer_stats {
  std::string target;
  std::uint64_t offers = 0;        ///< new revisions offered (notify and backlog)
  std::uint64_t coalesced = 0;     ///< revisions replaced by a newer one before being sent
  std::uint64_t writes_sent = 0;   ///< write requests sent to Twilio (updates and creates)
  std::uint64_t ok = 0;            ///< entity states written
  std::uint64_t retried = 0;       ///< failed attempts that were tried again
  std::uint64_t rate_limited = 0;  ///< 429 answers
  std::uint64_t conflicts = 0;     ///< 409/412 answers
  std::uint64_t dead = 0;          ///< writes given up on (recorded with mark_dead)
  std::uint64_t pending = 0;       ///< entities waiting for a write (now)
  std::uint64_t in_flight = 0;     ///< writes under way (now)
  std::uint64_t restarts = 0;      ///< writer actor starts after the first
};

struct sync_writer_options {
  std::size_t io_threads = 0;      ///< 0 = the target's concurrency
  std::size_t backlog_page = 256;  ///< entities per unwritten() page
  std::uint64_t seed = 0;          ///< backoff jitter; 0 = from the clock
};

/// Makes a Twilio client for one I/O lane; throws std::invalid_argument when it cannot (no
/// credentials).
using twilio_factory = std::function<std::unique_ptr<ports::twilio::twilio_api>()>;

class sync_writer {
public:
  /// Starts the target's I/O lanes, each with its own client from `make_twilio`. Throws
  /// std::invalid_argument when the target's configuration is invalid (see
  /// core::target_problem) or a client cannot be made (no Twilio credentials). `store` must
  /// hold the entities of `target.entity_kind`.
  static std::shared_ptr<sync_writer> create(target_config target,
                                             const twilio_factory& make_twilio,
                                             std::shared_ptr<ports::state_database> store,
                                             sync_writer_options options = {});

  /// Stops the lanes (see stop()).
  ~sync_writer();
  sync_writer(const sync_writer&) = delete;
  sync_writer& operator=(const sync_writer&) = delete;

  /// The writer actor as a supervisor child ("sync-writer:<target name>", permanent). Each
  /// start spawns a fresh actor that takes over the lanes and reads the backlog.
  child_spec child() const;

  /// A new revision of an entity was stored. Thread-safe, never blocks; ignored unless the
  /// entity is of the target's kind. Lost if no writer actor runs: its next start finds it in
  /// the backlog.
  void notify(const ports::stored_state& state) const;

  /// Pages through the store's unwritten entities again, e.g. after the store forgot what this
  /// target wrote (rebuild's re-push). Thread-safe.
  void rescan() const;

  /// Thread-safe snapshot for `GET /v1/targets`.
  sync_writer_stats stats() const;

  const target_config& target() const noexcept;

  /// Drops queued jobs and joins the lanes, waiting for calls under way (at most the client's
  /// timeouts). Stop the actor first; idempotent.
  void stop();

  struct impl;

private:
  explicit sync_writer(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

}  // namespace switchboard::actors
