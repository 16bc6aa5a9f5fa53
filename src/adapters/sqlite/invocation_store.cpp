#include "adapters/sqlite/invocation_store.hpp"
#include "adapters/sqlite/private_files.hpp"

#include "adapters/sqlite/statements.hpp"

#include <stdexcept>

namespace switchboard::adapters::sqlite {

using internal::text;
using internal::unsigned_of;

using ports::invocation_row;
using ports::invocation_spec;
using ports::step_row;
using ports::timer_row;

namespace {

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS invocations(
  n INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, key TEXT NOT NULL,
  handler TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, result TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS invocations_status ON invocations(status, service);
CREATE INDEX IF NOT EXISTS invocations_key ON invocations(service, key);
CREATE TABLE IF NOT EXISTS idempotency(
  service TEXT NOT NULL, idempotency_key TEXT NOT NULL, invocation INTEGER NOT NULL,
  created_ms INTEGER NOT NULL, PRIMARY KEY(service, idempotency_key));
CREATE INDEX IF NOT EXISTS idempotency_invocation ON idempotency(invocation);
CREATE TABLE IF NOT EXISTS steps(
  invocation INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, result TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL DEFAULT '', PRIMARY KEY(invocation, name));
CREATE TABLE IF NOT EXISTS timers(
  n INTEGER PRIMARY KEY AUTOINCREMENT, due_ms INTEGER NOT NULL, service TEXT NOT NULL,
  key TEXT NOT NULL, handler TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS timers_due ON timers(status, due_ms);
)sql";

constexpr const char* invocation_columns =
    "n, service, key, handler, body, status, result, error, created_at, updated_at";

invocation_row invocation_of(SQLite::Statement& q) {
  invocation_row r;
  r.n = unsigned_of(q, 0);
  r.service = text(q, 1);
  r.key = text(q, 2);
  r.handler = text(q, 3);
  r.body = text(q, 4);
  r.status = text(q, 5);
  r.result = text(q, 6);
  r.error = text(q, 7);
  r.created_at = text(q, 8);
  r.updated_at = text(q, 9);
  return r;
}

}  // namespace

invocation_store::invocation_store(SQLite::Database& db, std::shared_ptr<wal_sync> durable)
    : db_(db), statements_(db), durable_(std::move(durable)) {
  write([&] { db_.exec(schema); });
}

void invocation_store::write(const std::function<void()>& fn) {
  // BEGIN IMMEDIATE takes the write lock now, so the reads inside `fn` see what it commits on.
  // The busy timeout covers waiting for other connections' transactions.
  db_.exec("BEGIN IMMEDIATE");
  try {
    fn();
    db_.exec("COMMIT");
  } catch (...) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
  // Outside the write lock: other connections commit while this one waits for the disk, and
  // one flush covers them all.
  if (durable_)
    durable_->wait_durable();
}

std::uint64_t invocation_store::create_invocation(const invocation_spec& spec,
                                                  const std::string& now, std::int64_t now_ms) {
  auto q_use = statements_(
      "INSERT INTO invocations(service, key, handler, body, status, created_at, updated_at) "
      "VALUES(?, ?, ?, ?, 'running', ?, ?)");
  auto& q = *q_use;
  q.bind(1, spec.service);
  q.bind(2, spec.key);
  q.bind(3, spec.handler);
  q.bind(4, spec.body);
  q.bind(5, now);
  q.bind(6, now);
  q.exec();
  const auto n = static_cast<std::uint64_t>(db_.getLastInsertRowid());
  if (!spec.idempotency_key.empty()) {
    // REPLACE: a key older than the window may be taken again.
    auto k_use = statements_(
        "INSERT OR REPLACE INTO idempotency(service, idempotency_key, invocation, created_ms) "
        "VALUES(?, ?, ?, ?)");
    auto& k = *k_use;
    k.bind(1, spec.service);
    k.bind(2, spec.idempotency_key);
    k.bind(3, static_cast<std::int64_t>(n));
    k.bind(4, now_ms);
    k.exec();
  }
  return n;
}

std::optional<std::uint64_t> invocation_store::idempotent(const std::string& service,
                                                          const std::string& idempotency_key,
                                                          std::int64_t since_ms) {
  auto q_use = statements_(
      "SELECT invocation FROM idempotency WHERE service = ? AND idempotency_key = ? AND "
      "created_ms >= ?");
  auto& q = *q_use;
  q.bind(1, service);
  q.bind(2, idempotency_key);
  q.bind(3, since_ms);
  if (!q.executeStep())
    return std::nullopt;
  return unsigned_of(q, 0);
}

void invocation_store::release_idempotency_key(std::uint64_t n) {
  auto q_use = statements_("DELETE FROM idempotency WHERE invocation = ?");
  auto& q = *q_use;
  q.bind(1, static_cast<std::int64_t>(n));
  q.exec();
}

std::optional<std::string> invocation_store::idempotency_key_of(std::uint64_t n) {
  auto q_use = statements_("SELECT idempotency_key FROM idempotency WHERE invocation = ?");
  auto& q = *q_use;
  q.bind(1, static_cast<std::int64_t>(n));
  if (!q.executeStep())
    return std::nullopt;
  return text(q, 0);
}

std::vector<std::uint64_t> invocation_store::idempotent_with_prefix(const std::string& service,
                                                                    const std::string& prefix) {
  // A range on the primary key (service, idempotency_key), not a scan: every key that starts
  // with `prefix` sorts at or after it and before `prefix` with its last byte raised.
  auto q_use = statements_(
      "SELECT invocation FROM idempotency WHERE service = ? AND idempotency_key >= ? AND "
      "idempotency_key < ? ORDER BY invocation");
  auto& q = *q_use;
  auto upper = prefix;
  if (!upper.empty())
    upper.back() = static_cast<char>(upper.back() + 1);
  q.bind(1, service);
  q.bind(2, prefix);
  q.bind(3, upper);
  std::vector<std::uint64_t> out;
  while (q.executeStep())
    out.push_back(unsigned_of(q, 0));
  return out;
}

std::optional<invocation_row> invocation_store::invocation(std::uint64_t n) {
  auto q_use =
      statements_(std::string{"SELECT "} + invocation_columns + " FROM invocations WHERE n = ?");
  auto& q = *q_use;
  q.bind(1, static_cast<std::int64_t>(n));
  if (!q.executeStep())
    return std::nullopt;
  return invocation_of(q);
}

std::vector<std::uint64_t> invocation_store::running_invocations(const std::string& service) {
  auto q_use =
      statements_("SELECT n FROM invocations WHERE status = 'running' AND service = ? ORDER BY n");
  auto& q = *q_use;
  q.bind(1, service);
  std::vector<std::uint64_t> out;
  while (q.executeStep())
    out.push_back(unsigned_of(q, 0));
  return out;
}

std::vector<invocation_row> invocation_store::invocations(const std::string& status,
                                                          std::size_t limit, std::uint64_t before) {
  auto q_use = statements_(
      std::string{"SELECT "} + invocation_columns +
      " FROM invocations WHERE (? = '' OR status = ?) AND n < ? ORDER BY n DESC LIMIT ?");
  auto& q = *q_use;
  q.bind(1, status);
  q.bind(2, status);
  q.bind(3, before == 0 ? std::numeric_limits<std::int64_t>::max()
                        : static_cast<std::int64_t>(std::min<std::uint64_t>(
                              before, std::numeric_limits<std::int64_t>::max())));
  q.bind(4, static_cast<std::int64_t>(limit));
  std::vector<invocation_row> out;
  while (q.executeStep())
    out.push_back(invocation_of(q));
  return out;
}

std::vector<invocation_row> invocation_store::invocations_of(const std::string& service,
                                                             const std::string& key_prefix) {
  auto q_use =
      statements_(std::string{"SELECT "} + invocation_columns +
                  " FROM invocations WHERE service = ? AND substr(key, 1, ?) = ? ORDER BY n");
  auto& q = *q_use;
  q.bind(1, service);
  q.bind(2, static_cast<std::int64_t>(key_prefix.size()));
  q.bind(3, key_prefix);
  std::vector<invocation_row> out;
  while (q.executeStep())
    out.push_back(invocation_of(q));
  return out;
}

void invocation_store::set_invocation(std::uint64_t n, const std::string& status,
                                      const std::string& result, const std::string& error,
                                      const std::string& now) {
  auto q_use = statements_(
      "UPDATE invocations SET status = ?, result = ?, error = ?, updated_at = ? WHERE n = ?");
  auto& q = *q_use;
  q.bind(1, status);
  q.bind(2, result);
  q.bind(3, error);
  q.bind(4, now);
  q.bind(5, static_cast<std::int64_t>(n));
  q.exec();
}

std::optional<step_row> invocation_store::step(std::uint64_t invocation, const std::string& name) {
  auto q_use = statements_(
      "SELECT name, status, attempts, result, error, updated_at FROM steps "
      "WHERE invocation = ? AND name = ?");
  auto& q = *q_use;
  q.bind(1, static_cast<std::int64_t>(invocation));
  q.bind(2, name);
  if (!q.executeStep())
    return std::nullopt;
  return step_row{text(q, 0), text(q, 1), q.getColumn(2).getInt64(),
                  text(q, 3), text(q, 4), text(q, 5)};
}

void invocation_store::record_step(std::uint64_t invocation, const step_row& s) {
  auto q_use = statements_(
      "INSERT OR REPLACE INTO steps(invocation, name, status, attempts, result, error, updated_at) "
      "VALUES(?, ?, ?, ?, ?, ?, ?)");
  auto& q = *q_use;
  q.bind(1, static_cast<std::int64_t>(invocation));
  q.bind(2, s.name);
  q.bind(3, s.status);
  q.bind(4, s.attempts);
  q.bind(5, s.result);
  q.bind(6, s.error);
  q.bind(7, s.updated_at);
  q.exec();
}

std::vector<step_row> invocation_store::steps(std::uint64_t invocation) {
  auto q_use = statements_(
      "SELECT name, status, attempts, result, error, updated_at FROM steps "
      "WHERE invocation = ? ORDER BY rowid");
  auto& q = *q_use;
  q.bind(1, static_cast<std::int64_t>(invocation));
  std::vector<step_row> out;
  while (q.executeStep())
    out.push_back(step_row{text(q, 0), text(q, 1), q.getColumn(2).getInt64(), text(q, 3),
                           text(q, 4), text(q, 5)});
  return out;
}

void invocation_store::reset_step_attempts(std::uint64_t invocation) {
  auto q_use =
      statements_("UPDATE steps SET attempts = 0 WHERE invocation = ? AND status != 'done'");
  auto& q = *q_use;
  q.bind(1, static_cast<std::int64_t>(invocation));
  q.exec();
}

// --- timers -------------------------------------------------------------------------------------

std::uint64_t invocation_store::add_timer(const timer_row& t) {
  auto q_use = statements_(
      "INSERT INTO timers(due_ms, service, key, handler, body, status) VALUES(?, "
      "?, ?, ?, ?, 'pending')");
  auto& q = *q_use;
  q.bind(1, t.due_ms);
  q.bind(2, t.service);
  q.bind(3, t.key);
  q.bind(4, t.handler);
  q.bind(5, t.body);
  q.exec();
  return static_cast<std::uint64_t>(db_.getLastInsertRowid());
}

std::optional<std::int64_t> invocation_store::next_timer_due() {
  auto q_use = statements_("SELECT min(due_ms) FROM timers WHERE status = 'pending'");
  auto& q = *q_use;
  if (!q.executeStep() || q.getColumn(0).isNull())
    return std::nullopt;
  return q.getColumn(0).getInt64();
}

std::vector<timer_row> invocation_store::due_timers(std::int64_t now_ms, std::size_t limit) {
  auto q_use = statements_(
      "SELECT n, due_ms, service, key, handler, body FROM timers WHERE status = 'pending' "
      "AND due_ms <= ? ORDER BY due_ms LIMIT ?");
  auto& q = *q_use;
  q.bind(1, now_ms);
  q.bind(2, static_cast<std::int64_t>(limit));
  std::vector<timer_row> out;
  while (q.executeStep())
    out.push_back(timer_row{unsigned_of(q, 0), q.getColumn(1).getInt64(), text(q, 2), text(q, 3),
                            text(q, 4), text(q, 5)});
  return out;
}

void invocation_store::set_timer_status(std::uint64_t n, const std::string& status) {
  auto q_use = statements_("UPDATE timers SET status = ? WHERE n = ?");
  auto& q = *q_use;
  q.bind(1, status);
  q.bind(2, static_cast<std::int64_t>(n));
  q.exec();
}

namespace {

SQLite::Database open_database(const std::string& path) {
  SQLite::Database db(private_database(path),
                      SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX);
  db.setBusyTimeout(10'000);
  const auto mode = db.execAndGet("PRAGMA journal_mode=WAL").getString();
  if (mode != "wal")
    throw std::runtime_error("journal_mode is '" + mode + "', WAL is needed");
  // NORMAL: a commit does not flush; invocation_store::write waits for the file's group flush
  // (wal_sync) instead, so every durable acknowledgement is still on disk.
  db.exec("PRAGMA synchronous=NORMAL");
  db.exec("PRAGMA foreign_keys=ON");
  return db;
}

SQLite::Database open_named(const std::string& path) try {
  return open_database(path);
} catch (const std::exception& e) {
  throw std::runtime_error("cannot open the database '" + path + "': " + e.what() +
                           " (check that data_dir is writable)");
}

}  // namespace

durable_database::durable_database(const std::string& path)
    : durable_(wal_sync::for_file(path)), db_(open_named(path)), journal_(db_, durable_) {}

}  // namespace switchboard::adapters::sqlite
