#pragma once

// The durable-execution engine's tables in SQLite (invocations, steps, idempotency keys, durable
// timers): ports::invocation_journal on one connection. `durable_database` opens a database
// file for the engine: WAL, and every `write` is on disk before it returns, by group commit
// (wal_sync.hpp: the commits of all the file's connections share one flush); a job that keeps
// its own tables in the same file adds its stores over `db()`.
//
// One connection is used from one thread at a time; every thread opens its own.

#include "adapters/sqlite/wal_sync.hpp"
#include "ports/invocation_journal.hpp"

#include "adapters/sqlite/statements.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <memory>
#include <string>

namespace switchboard::adapters::sqlite {

class invocation_store final : public ports::invocation_journal {
public:
  /// Creates the engine's tables in `db` if needed. `db` must outlive this. With `durable`,
  /// each `write` waits for it after its commit (the connection runs synchronous=NORMAL);
  /// without, the connection's own synchronous setting decides.
  explicit invocation_store(SQLite::Database& db, std::shared_ptr<wal_sync> durable = nullptr);

  void write(const std::function<void()>& fn) override;
  std::uint64_t create_invocation(const ports::invocation_spec& spec, const std::string& now,
                                  std::int64_t now_ms) override;
  std::optional<std::uint64_t> idempotent(const std::string& service,
                                          const std::string& idempotency_key,
                                          std::int64_t since_ms) override;
  void release_idempotency_key(std::uint64_t n) override;
  std::optional<std::string> idempotency_key_of(std::uint64_t n) override;
  std::vector<std::uint64_t> idempotent_with_prefix(const std::string& service,
                                                    const std::string& prefix) override;
  std::optional<ports::invocation_row> invocation(std::uint64_t n) override;
  std::vector<std::uint64_t> running_invocations(const std::string& service) override;
  std::vector<ports::invocation_row> invocations(const std::string& status, std::size_t limit,
                                                 std::uint64_t before) override;
  std::vector<ports::invocation_row> invocations_of(const std::string& service,
                                                    const std::string& key_prefix) override;
  void set_invocation(std::uint64_t n, const std::string& status, const std::string& result,
                      const std::string& error, const std::string& now) override;
  std::optional<ports::step_row> step(std::uint64_t invocation, const std::string& name) override;
  void record_step(std::uint64_t invocation, const ports::step_row& s) override;
  std::vector<ports::step_row> steps(std::uint64_t invocation) override;
  void reset_step_attempts(std::uint64_t invocation) override;
  std::uint64_t add_timer(const ports::timer_row& t) override;
  std::optional<std::int64_t> next_timer_due() override;
  std::vector<ports::timer_row> due_timers(std::int64_t now_ms, std::size_t limit) override;
  void set_timer_status(std::uint64_t n, const std::string& status) override;

private:
  SQLite::Database& db_;
  internal::statement_cache statements_;  // prepared once, on this connection
  std::shared_ptr<wal_sync> durable_;
};

/// A database file opened for the engine: the connection and the engine's journal on it.
class durable_database : public ports::durable_connection {
public:
  /// Opens (creating if needed) `path`. Throws std::runtime_error naming the file.
  explicit durable_database(const std::string& path);
  ports::invocation_journal& journal() override { return journal_; }
  SQLite::Database& db() noexcept { return db_; }
  /// The file's group commit: commits and flushes so far.
  wal_sync_stats sync_stats() const { return durable_->stats(); }

private:
  std::shared_ptr<wal_sync> durable_;  // before journal_, which uses it
  SQLite::Database db_;
  invocation_store journal_;
};

}  // namespace switchboard::adapters::sqlite
