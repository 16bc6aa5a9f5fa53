#pragma once

// The journal writer: the one thread that writes the journal database.
//
// Producers hand events in from any thread; the writer takes everything queued, appends it
// in one transaction (group commit), and only after that transaction is durable answers
// each producer and hands the accepted events to the bus. It also writes consumer
// checkpoints (coalesced: the newest per consumer) and dead letters.
//
// It runs on its own thread, never on a CAF scheduler thread, because every commit blocks
// on fsync. It does not crash: a storage error fails the batch it happened in (each
// producer gets the error, nothing of the batch is acknowledged) and the next batch tries
// again, so the journal recovers by itself once the condition (full disk, lock) clears.

#include "engine/lane.hpp"
#include "ports/journal_storage.hpp"
#include "switchboard/event.hpp"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::actors {

/// How one append ended: stored (or found stored) with a sequence, or failed with a reason.
struct append_result {
  bool ok = false;
  ports::append_status status = ports::append_status::accepted;
  std::uint64_t sequence = 0;
  std::string error;       ///< why it failed, when !ok
  bool retryable = false;  ///< whether trying again later may succeed
};

class journal_writer {
public:
  using append_callback = std::function<void(const append_result&)>;
  using committed_callback = std::function<void(std::vector<event_ptr>)>;
  using park_callback = std::function<void(bool ok, const std::string& error)>;

  /// Opens (or creates) the journal. Throws ports::store_error if it cannot.
  /// `on_committed` runs on the writer thread after each durable commit with the accepted
  /// events in sequence order; it must not block.
  journal_writer(ports::journal_options options, committed_callback on_committed,
                 std::size_t max_batch = 8192);

  /// Writes everything already queued, then stops the thread.
  ~journal_writer();

  journal_writer(const journal_writer&) = delete;
  journal_writer& operator=(const journal_writer&) = delete;

  /// Queues one event; `done` runs on the writer thread once it is durable (or failed).
  void append(event ev, append_callback done);

  /// Queues a checkpoint; only the newest per consumer is written.
  void save_checkpoint(const std::string& consumer, std::uint64_t sequence);

  /// Queues a dead letter.
  void park(ports::dead_letter letter, park_callback done = {});

  /// Runs `fn` on the writer thread with the writer's connection (dead-letter admin and other
  /// rare writes that must not race the writer).
  void run(std::function<void(ports::journal_storage&)> fn);

  /// The highest sequence committed so far.
  std::uint64_t last_sequence() const;

  /// Blocks until everything queued before this call is written (or failed).
  void flush();

  const ports::journal_options& options() const noexcept { return options_; }

private:
  struct pending_append {
    event ev;
    append_callback done;
  };
  struct pending_park {
    ports::dead_letter letter;
    park_callback done;
  };

  void loop();
  void write_appends(std::vector<pending_append>& batch);

  ports::journal_options options_;
  std::unique_ptr<ports::journal_storage> store_;
  committed_callback on_committed_;
  std::size_t max_batch_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::vector<pending_append> appends_;
  std::map<std::string, std::uint64_t> checkpoints_;
  std::vector<pending_park> parks_;
  std::vector<std::function<void(ports::journal_storage&)>> jobs_;
  std::uint64_t submitted_ = 0;         // work items queued so far
  std::uint64_t completed_ = 0;         // work items finished so far
  std::uint64_t checkpoint_calls_ = 0;  // save_checkpoint calls coalesced into checkpoints_
  std::uint64_t last_sequence_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

/// The journal reader: one lane (a thread) with its own read-only connection, serving the
/// reads of consumers that fell behind the in-memory tail (and their checkpoints at start), in
/// the order asked. Like the writer it is not a CAF actor: blocking SQLite reads never run on
/// scheduler threads. (A CAF detached actor would do too, but CAF 0.17 hangs destroying an
/// actor system from another thread than the one that spawned a detached actor.)
class journal_reader {
public:
  /// The events read and the rows among them that cannot be decoded (both in sequence order),
  /// or, with both null, why the read failed.
  using fetch_callback = std::function<void(
      std::shared_ptr<const std::vector<event_ptr>> events,
      std::shared_ptr<const std::vector<unreadable_event>> unreadable, std::string error)>;
  using checkpoint_callback = std::function<void(std::uint64_t sequence, std::string error)>;

  explicit journal_reader(ports::journal_options options);
  /// Answers what is queued, then stops the thread.
  ~journal_reader();
  journal_reader(const journal_reader&) = delete;
  journal_reader& operator=(const journal_reader&) = delete;

  /// Up to `limit` rows after `after`; `done` runs on the reader thread.
  void fetch(std::uint64_t after, std::uint32_t limit, fetch_callback done);
  /// A consumer's saved checkpoint; `done` runs on the reader thread.
  void checkpoint(std::string consumer, checkpoint_callback done);

private:
  /// Queues `run` with the reader's connection (opened on first use, reopened after a
  /// failure); if it throws before answering, `fail` answers with the error.
  void post(std::function<void(ports::journal_storage&)> run,
            std::function<void(const std::string&)> fail);

  ports::journal_options options_;
  std::unique_ptr<ports::journal_storage> store_;  // only touched on the lane
  engine::lane lane_;  // last: drained and joined before the connection goes
};

/// The journal rows that could not be decoded, as met since start by subscriptions and API
/// reads, each with the subscriptions that parked it: what /ready reports. Thread-safe and
/// bounded (the first `kept` rows; `more` says others were met).
class unreadable_rows {
public:
  static constexpr std::size_t kept = 100;

  struct row {
    unreadable_event what;
    std::vector<std::string> parked_by;  ///< consumers that dead-lettered it
  };

  /// Records `what` (once per sequence) and, if not empty, that `consumer` parked it.
  void note(const unreadable_event& what, const std::string& consumer = {});
  /// The rows recorded, in sequence order.
  std::vector<row> rows() const;
  bool more() const;

private:
  mutable std::mutex mu_;
  std::map<std::uint64_t, row> rows_;
  bool more_ = false;
};

}  // namespace switchboard::actors
