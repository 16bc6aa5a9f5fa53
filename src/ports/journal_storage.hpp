#pragma once

// The journal's storage, as a port: events with their global sequence, consumer checkpoints
// and dead letters. The engine's journal writer and reader use it; adapters/sqlite/journal_store
// implements it (SQLite in WAL mode).
//
// One journal_storage is one connection and is not thread-safe. Durability: a committed
// `append` is on disk (fsync'd) when it returns; that is what lets producers be acknowledged.

#include "switchboard/event.hpp"
#include "switchboard/journal.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::ports {

/// A storage failure. Nothing of the failed call was stored (its transaction rolled back).
class store_error : public std::runtime_error {
public:
  enum class kind {
    disk_full,  ///< SQLITE_FULL: the disk (or max_page_count) is full; retry when space frees
    busy,       ///< SQLITE_BUSY/LOCKED beyond the busy timeout; retry
    io,         ///< SQLITE_IOERR: the OS reported an I/O error; retry later
    other,      ///< anything else (corrupt file, misuse): not retryable
  };
  store_error(kind k, const std::string& what) : std::runtime_error(what), kind_(k) {}
  kind which() const noexcept { return kind_; }
  bool retryable() const noexcept { return kind_ != kind::other; }

private:
  kind kind_;
};

struct journal_options {
  std::string path;                            ///< database file; created with its schema
  bool synchronous_full = true;                ///< fsync every commit (FULL) vs NORMAL
  std::optional<std::int64_t> max_page_count;  ///< caps the file (tests simulate a full disk)
  int busy_timeout_ms = 5000;
  bool read_only = false;  ///< a reader connection
};

enum class append_status { accepted, duplicate };

struct append_outcome {
  append_status status = append_status::accepted;
  std::uint64_t sequence = 0;  ///< the event's sequence; for a duplicate, the stored original's
};

struct dead_letter {
  std::uint64_t id = 0;        ///< dead letter id (not the event sequence)
  std::string consumer;        ///< the consumer that gave up on the event
  std::uint64_t sequence = 0;  ///< the event's journal sequence
  std::string reason;          ///< "terminal error", "retries exhausted" or "unreadable"
  std::uint32_t attempts = 0;
  std::string last_error;
  std::string parked_at;  ///< RFC 3339 UTC
};

class journal_storage {
public:
  virtual ~journal_storage() = default;

  /// Appends `events` in ONE transaction, in order, and commits. Accepted events get the next
  /// sequences (and `ev.sequence` is set); an event whose (source, id) is already stored, or
  /// appears earlier in the same call, is a duplicate and is not stored again. Throws
  /// store_error if the transaction fails; then nothing of the call is stored.
  virtual std::vector<append_outcome> append(std::vector<event>& events) = 0;

  /// Up to `limit` events with sequence > `after`, in sequence order, `sequence` set. Throws
  /// store_error naming the sequence if one of them cannot be decoded (see read_page).
  virtual std::vector<event> read_after(std::uint64_t after, std::size_t limit) = 0;

  /// Up to `limit` rows with sequence > `after`, in sequence order: the events, and apart the
  /// rows that cannot be decoded (with what their columns say and why), so that readers can
  /// page past them. Throws store_error only if the database itself fails.
  virtual journal_page read_page(std::uint64_t after, std::size_t limit) = 0;

  /// The highest sequence stored, 0 if none.
  virtual std::uint64_t last_sequence() = 0;

  /// The sequence just before the first event whose `time` is at or after `rfc3339` (so
  /// that `read_after` of it replays from that time); nullopt if `rfc3339` is malformed.
  virtual std::optional<std::uint64_t> sequence_before_time(std::string_view rfc3339) = 0;

  /// A consumer's checkpoint: every event up to it is done. 0 if none was saved.
  virtual std::uint64_t checkpoint(const std::string& consumer) = 0;
  virtual void save_checkpoint(const std::string& consumer, std::uint64_t sequence) = 0;

  /// Parks an event for a consumer; returns the dead letter id.
  virtual std::uint64_t park(const std::string& consumer, std::uint64_t sequence,
                             const std::string& reason, std::uint32_t attempts,
                             const std::string& last_error) = 0;
  /// Dead letters, oldest first, optionally of one consumer, with id > `after_id`.
  virtual std::vector<dead_letter> dead_letters(const std::string& consumer = {},
                                                std::size_t limit = 100,
                                                std::uint64_t after_id = 0) = 0;
  virtual std::optional<dead_letter> find_dead_letter(std::uint64_t id) = 0;
  /// Removes a dead letter (after a retry was handed on, or to discard it); false if unknown.
  virtual bool remove_dead_letter(std::uint64_t id) = 0;

  /// Caps the file at `pages` pages (SQLite's `max_page_count`, for this connection) and
  /// returns the cap in effect; SQLite never sets it below the file's current size. Raising
  /// it lets appends proceed after a disk_full error caused by the cap.
  virtual std::int64_t set_max_page_count(std::int64_t pages) = 0;
};

/// Opens the journal's storage (creating it with its schema unless `read_only`). Throws
/// store_error if it cannot. Defined by the storage adapter the program links
/// (adapters/sqlite/journal_store.cpp).
std::unique_ptr<journal_storage> open_journal_storage(const journal_options& options);

}  // namespace switchboard::ports
