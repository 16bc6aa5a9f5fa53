#pragma once

// The journal's storage: one SQLite database in WAL mode holding the events (with their
// global sequence), consumer checkpoints and dead letters.
//
// A journal_store is one connection and is not thread-safe: the journal's writer thread owns
// one, and each reader (catch-up reads, HTTP GET /v1/events) opens its own. WAL lets readers
// run beside the writer.
//
// Durability: with `synchronous = full` (the default) a committed transaction is on disk
// (fsync'd) when `append` returns; that is what lets producers be acknowledged.

#include "ports/journal_storage.hpp"
#include "switchboard/event.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::adapters::sqlite {

// The port's vocabulary, under the names this adapter's callers know.
using ports::append_outcome;
using ports::append_status;
using ports::dead_letter;
using ports::journal_options;
using ports::store_error;

class journal_store final : public ports::journal_storage {
public:
  explicit journal_store(journal_options options);  // throws store_error
  ~journal_store();
  journal_store(const journal_store&) = delete;
  journal_store& operator=(const journal_store&) = delete;

  /// Appends `events` in ONE transaction, in order, and commits. Accepted events get the next
  /// sequences (and `ev.sequence` is set); an event whose (source, id) is already stored, or
  /// appears earlier in the same call, is a duplicate and is not stored again. Throws
  /// store_error if the transaction fails; then nothing of the call is stored.
  std::vector<append_outcome> append(std::vector<event>& events) override;

  /// Up to `limit` events with sequence > `after`, in sequence order, `sequence` set. Throws
  /// store_error naming the sequence if one of them cannot be decoded.
  std::vector<event> read_after(std::uint64_t after, std::size_t limit) override;

  /// Up to `limit` rows with sequence > `after`: the events, and the rows that cannot be
  /// decoded (e.g. `Infinity` written by an older switchboard) with their columns and why.
  journal_page read_page(std::uint64_t after, std::size_t limit) override;

  /// The highest sequence stored, 0 if none.
  std::uint64_t last_sequence() override;

  /// The sequence just before the first event whose `time` is at or after `rfc3339` (so
  /// that `read_after` of it replays from that time); nullopt if `rfc3339` is malformed.
  std::optional<std::uint64_t> sequence_before_time(std::string_view rfc3339) override;

  /// A consumer's checkpoint: every event up to it is done. 0 if none was saved.
  std::uint64_t checkpoint(const std::string& consumer) override;
  void save_checkpoint(const std::string& consumer, std::uint64_t sequence) override;

  /// Parks an event for a consumer; returns the dead letter id.
  std::uint64_t park(const std::string& consumer, std::uint64_t sequence, const std::string& reason,
                     std::uint32_t attempts, const std::string& last_error) override;
  /// Dead letters, oldest first, optionally of one consumer, with id > `after_id`.
  std::vector<dead_letter> dead_letters(const std::string& consumer = {}, std::size_t limit = 100,
                                        std::uint64_t after_id = 0) override;
  std::optional<dead_letter> find_dead_letter(std::uint64_t id) override;
  /// Removes a dead letter (after a retry was handed on, or to discard it); false if unknown.
  bool remove_dead_letter(std::uint64_t id) override;

  /// Caps the file at `pages` pages (SQLite's `max_page_count`, for this connection) and
  /// returns the cap in effect; SQLite never sets it below the file's current size. Raising
  /// it lets appends proceed after a disk_full error caused by the cap.
  std::int64_t set_max_page_count(std::int64_t pages) override;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace switchboard::adapters::sqlite
