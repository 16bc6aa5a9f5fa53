#pragma once

// Prepared statements that are prepared once per connection and reused (`statement_cache`),
// scoped use of one (`statement_use`: reset and bindings dropped when the use ends), and the
// column readers the stores share. Internal; never installed.

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace switchboard::adapters::sqlite::internal {

/// Resets a cached statement and drops its bindings when a use of it ends (also on errors:
/// `tryReset` does not throw the step's error again, and bindNoCopy pointers must not outlive
/// the strings they point to).
class statement_use {
public:
  explicit statement_use(SQLite::Statement& s) : s_(s) {}
  ~statement_use() {
    s_.tryReset();
    try {
      s_.clearBindings();  // sqlite3_clear_bindings always returns SQLITE_OK
    } catch (...) {
    }
  }
  statement_use(const statement_use&) = delete;
  statement_use& operator=(const statement_use&) = delete;
  SQLite::Statement* operator->() { return &s_; }
  SQLite::Statement& operator*() { return s_; }

private:
  SQLite::Statement& s_;
};

/// The statements of one connection, each prepared on first use and kept. Used from the
/// connection's thread only. A statement is not re-entrant: one use of a given SQL text at a
/// time (a store method never runs its own SQL again while stepping it).
class statement_cache {
public:
  explicit statement_cache(SQLite::Database& db) : db_(db) {}

  /// `sql` ready to bind and run; reset when the returned use ends.
  statement_use operator()(const std::string& sql) {
    auto& slot = statements_[sql];
    if (!slot)
      slot = std::make_unique<SQLite::Statement>(db_, sql);
    return statement_use{*slot};
  }

private:
  SQLite::Database& db_;
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> statements_;
};

inline std::string text(SQLite::Statement& q, int column) {
  return q.getColumn(column).getString();
}

inline std::uint64_t unsigned_of(SQLite::Statement& q, int column) {
  return static_cast<std::uint64_t>(q.getColumn(column).getInt64());
}

}  // namespace switchboard::adapters::sqlite::internal
