#include "adapters/sqlite/lead_store.hpp"

#include <stdexcept>

namespace switchboard::adapters::sqlite {

namespace {

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS locations(
  dealer_id TEXT NOT NULL, location_id TEXT NOT NULL, dealer_name TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '', phone TEXT NOT NULL, config_phone TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(dealer_id, location_id));
CREATE TABLE IF NOT EXISTS conversations(
  n INTEGER PRIMARY KEY AUTOINCREMENT, customer_phone TEXT NOT NULL, location_phone TEXT NOT NULL,
  proxy_number TEXT NOT NULL, sid TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,
  created_at TEXT NOT NULL, closed_at TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX IF NOT EXISTS conversations_active
  ON conversations(customer_phone, location_phone) WHERE status IN ('opening', 'open');
CREATE INDEX IF NOT EXISTS conversations_sid ON conversations(sid);
CREATE TABLE IF NOT EXISTS leads(
  id TEXT PRIMARY KEY, status TEXT NOT NULL, dealer_id TEXT NOT NULL, location_id TEXT NOT NULL,
  customer_name TEXT NOT NULL, customer_phone TEXT NOT NULL, message TEXT NOT NULL,
  location_phone TEXT NOT NULL, proxy_number TEXT NOT NULL, conversation_id TEXT NOT NULL,
  created_at TEXT NOT NULL, opened_at TEXT NOT NULL DEFAULT '', closed_at TEXT NOT NULL DEFAULT '',
  close_reason TEXT NOT NULL DEFAULT '', replaced_by TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '', customer_messages INTEGER NOT NULL DEFAULT 0,
  dealer_messages INTEGER NOT NULL DEFAULT 0, reminders_sent INTEGER NOT NULL DEFAULT 0,
  last_activity_ms INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS leads_active
  ON leads(customer_phone, dealer_id, location_id) WHERE status IN ('opening', 'open');
CREATE INDEX IF NOT EXISTS leads_conversation ON leads(conversation_id, status);
CREATE TABLE IF NOT EXISTS invocations(
  n INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, key TEXT NOT NULL,
  handler TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, result TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS invocations_status ON invocations(status, service);
CREATE INDEX IF NOT EXISTS invocations_key ON invocations(service, key);
CREATE TABLE IF NOT EXISTS idempotency(
  service TEXT NOT NULL, idempotency_key TEXT NOT NULL, invocation INTEGER NOT NULL,
  created_ms INTEGER NOT NULL, PRIMARY KEY(service, idempotency_key));
CREATE TABLE IF NOT EXISTS steps(
  invocation INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, result TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL DEFAULT '', PRIMARY KEY(invocation, name));
CREATE TABLE IF NOT EXISTS timers(
  n INTEGER PRIMARY KEY AUTOINCREMENT, due_ms INTEGER NOT NULL, service TEXT NOT NULL,
  key TEXT NOT NULL, handler TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS timers_due ON timers(status, due_ms);
CREATE TABLE IF NOT EXISTS inbound(
  message_sid TEXT PRIMARY KEY, conversation_sid TEXT NOT NULL, author TEXT NOT NULL,
  received_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS form_leads(
  id TEXT PRIMARY KEY, body TEXT NOT NULL, received_at TEXT NOT NULL);
)sql";

std::string text(SQLite::Statement& q, int column) { return q.getColumn(column).getString(); }

std::uint64_t unsigned_of(SQLite::Statement& q, int column) {
  return static_cast<std::uint64_t>(q.getColumn(column).getInt64());
}

constexpr const char* lead_columns =
    "id, status, dealer_id, location_id, customer_name, customer_phone, message, location_phone, "
    "proxy_number, conversation_id, created_at, opened_at, closed_at, close_reason, replaced_by, error, "
    "customer_messages, dealer_messages, reminders_sent, last_activity_ms";

lead_row lead_of(SQLite::Statement& q) {
  lead_row l;
  l.id = text(q, 0);
  l.status = text(q, 1);
  l.dealer_id = text(q, 2);
  l.location_id = text(q, 3);
  l.customer_name = text(q, 4);
  l.customer_phone = text(q, 5);
  l.message = text(q, 6);
  l.location_phone = text(q, 7);
  l.proxy_number = text(q, 8);
  l.conversation_id = text(q, 9);
  l.created_at = text(q, 10);
  l.opened_at = text(q, 11);
  l.closed_at = text(q, 12);
  l.close_reason = text(q, 13);
  l.replaced_by = text(q, 14);
  l.error = text(q, 15);
  l.customer_messages = q.getColumn(16).getInt64();
  l.dealer_messages = q.getColumn(17).getInt64();
  l.reminders_sent = q.getColumn(18).getInt64();
  l.last_activity_ms = q.getColumn(19).getInt64();
  return l;
}

constexpr const char* conversation_columns =
    "n, status, customer_phone, location_phone, proxy_number, sid, created_at, closed_at";

conversation_row conversation_of(SQLite::Statement& q) {
  conversation_row c;
  c.id = "cv-" + std::to_string(q.getColumn(0).getInt64());
  c.status = text(q, 1);
  c.customer_phone = text(q, 2);
  c.location_phone = text(q, 3);
  c.proxy_number = text(q, 4);
  c.sid = text(q, 5);
  c.created_at = text(q, 6);
  c.closed_at = text(q, 7);
  return c;
}

/// "cv-12" -> 12; 0 if `id` is not a conversation id.
std::int64_t conversation_number(const std::string& id) {
  if (id.rfind("cv-", 0) != 0 || id.size() < 4 || id.size() > 22)
    return 0;
  std::int64_t n = 0;
  for (std::size_t i = 3; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9')
      return 0;
    n = n * 10 + (id[i] - '0');
  }
  return n;
}

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

} // namespace

lead_store::lead_store(const std::string& path) try
  : db_(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX) {
  db_.setBusyTimeout(10'000);
  const auto mode = db_.execAndGet("PRAGMA journal_mode=WAL").getString();
  if (mode != "wal")
    throw std::runtime_error("journal_mode is '" + mode + "', WAL is needed");
  // FULL: a commit (and so every durable acknowledgement) is on disk when it returns.
  db_.exec("PRAGMA synchronous=FULL");
  db_.exec("PRAGMA foreign_keys=ON");
  write([&] { db_.exec(schema); });
} catch (const std::exception& e) {
  throw std::runtime_error("cannot open the lead database '" + path + "': " + e.what() +
                           " (check that data_dir is writable)");
}

lead_store::~lead_store() = default;

void lead_store::write(const std::function<void()>& fn) {
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
}

// --- dealers ------------------------------------------------------------------------------------

std::string lead_store::upsert_location(const location_row& l) {
  std::string previous;
  SQLite::Statement get(db_, "SELECT phone FROM locations WHERE dealer_id = ? AND location_id = ?");
  get.bind(1, l.dealer_id);
  get.bind(2, l.location_id);
  if (get.executeStep())
    previous = text(get, 0);
  SQLite::Statement put(db_,
                        "INSERT INTO locations(dealer_id, location_id, dealer_name, name, phone) "
                        "VALUES(?, ?, ?, ?, ?) ON CONFLICT(dealer_id, location_id) DO UPDATE SET "
                        "dealer_name = excluded.dealer_name, name = excluded.name, phone = excluded.phone");
  put.bind(1, l.dealer_id);
  put.bind(2, l.location_id);
  put.bind(3, l.dealer_name);
  put.bind(4, l.name);
  put.bind(5, l.phone);
  put.exec();
  return previous;
}

std::string lead_store::seed_location(const location_row& l) {
  SQLite::Statement get(db_, "SELECT phone, config_phone FROM locations WHERE dealer_id = ? AND location_id = ?");
  get.bind(1, l.dealer_id);
  get.bind(2, l.location_id);
  std::string phone = l.phone;
  if (get.executeStep() && text(get, 1) == l.phone)
    phone = text(get, 0);  // the file did not change: a change made at run time stays
  get.reset();
  SQLite::Statement put(db_,
                        "INSERT INTO locations(dealer_id, location_id, dealer_name, name, phone, config_phone) "
                        "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(dealer_id, location_id) DO UPDATE SET "
                        "dealer_name = excluded.dealer_name, name = excluded.name, phone = excluded.phone, "
                        "config_phone = excluded.config_phone");
  put.bind(1, l.dealer_id);
  put.bind(2, l.location_id);
  put.bind(3, l.dealer_name);
  put.bind(4, l.name);
  put.bind(5, phone);
  put.bind(6, l.phone);
  put.exec();
  return phone;
}

std::optional<location_row> lead_store::location(const std::string& dealer, const std::string& location) {
  SQLite::Statement q(db_,
                      "SELECT dealer_id, dealer_name, location_id, name, phone FROM locations "
                      "WHERE dealer_id = ? AND location_id = ?");
  q.bind(1, dealer);
  q.bind(2, location);
  if (!q.executeStep())
    return std::nullopt;
  return location_row{text(q, 0), text(q, 1), text(q, 2), text(q, 3), text(q, 4)};
}

std::vector<location_row> lead_store::locations(const std::string& dealer) {
  SQLite::Statement q(db_,
                      "SELECT dealer_id, dealer_name, location_id, name, phone FROM locations "
                      "WHERE dealer_id = ? ORDER BY location_id");
  q.bind(1, dealer);
  std::vector<location_row> out;
  while (q.executeStep())
    out.push_back(location_row{text(q, 0), text(q, 1), text(q, 2), text(q, 3), text(q, 4)});
  return out;
}

// --- leads and conversations ------------------------------------------------------------------------

std::optional<std::string> lead_store::active_lead(const std::string& customer_phone, const std::string& dealer,
                                                   const std::string& location) {
  SQLite::Statement q(db_,
                      "SELECT id FROM leads WHERE customer_phone = ? AND dealer_id = ? AND location_id = ? "
                      "AND status IN ('opening', 'open')");
  q.bind(1, customer_phone);
  q.bind(2, dealer);
  q.bind(3, location);
  if (!q.executeStep())
    return std::nullopt;
  return text(q, 0);
}

std::optional<conversation_row> lead_store::active_conversation(const std::string& customer_phone,
                                                                const std::string& location_phone) {
  SQLite::Statement q(db_, std::string{"SELECT "} + conversation_columns +
                               " FROM conversations WHERE customer_phone = ? AND location_phone = ? AND "
                               "status IN ('opening', 'open')");
  q.bind(1, customer_phone);
  q.bind(2, location_phone);
  if (!q.executeStep())
    return std::nullopt;
  return conversation_of(q);
}

std::set<std::string> lead_store::proxies_in_use(const std::string& customer_phone,
                                                 const std::string& location_phone) {
  SQLite::Statement q(db_,
                      "SELECT DISTINCT proxy_number FROM conversations WHERE status != 'closed' AND "
                      "(customer_phone = ? OR location_phone = ? OR customer_phone = ? OR location_phone = ?)");
  // A number may be a customer in one conversation and a location in another: check both ways.
  q.bind(1, customer_phone);
  q.bind(2, location_phone);
  q.bind(3, location_phone);
  q.bind(4, customer_phone);
  std::set<std::string> out;
  while (q.executeStep())
    out.insert(text(q, 0));
  return out;
}

conversation_row lead_store::insert_conversation(const std::string& customer_phone,
                                                 const std::string& location_phone,
                                                 const std::string& proxy, const std::string& now) {
  SQLite::Statement q(db_,
                      "INSERT INTO conversations(customer_phone, location_phone, proxy_number, status, "
                      "created_at) VALUES(?, ?, ?, 'opening', ?)");
  q.bind(1, customer_phone);
  q.bind(2, location_phone);
  q.bind(3, proxy);
  q.bind(4, now);
  q.exec();
  conversation_row c;
  c.id = "cv-" + std::to_string(db_.getLastInsertRowid());
  c.status = "opening";
  c.customer_phone = customer_phone;
  c.location_phone = location_phone;
  c.proxy_number = proxy;
  c.created_at = now;
  return c;
}

std::optional<conversation_row> lead_store::conversation(const std::string& id) {
  const auto n = conversation_number(id);
  if (n == 0)
    return std::nullopt;
  SQLite::Statement q(db_, std::string{"SELECT "} + conversation_columns + " FROM conversations WHERE n = ?");
  q.bind(1, n);
  if (!q.executeStep())
    return std::nullopt;
  return conversation_of(q);
}

std::optional<conversation_row> lead_store::conversation_by_sid(const std::string& sid) {
  SQLite::Statement q(db_, std::string{"SELECT "} + conversation_columns +
                               " FROM conversations WHERE sid = ? ORDER BY n DESC LIMIT 1");
  q.bind(1, sid);
  if (!q.executeStep())
    return std::nullopt;
  return conversation_of(q);
}

void lead_store::set_conversation_sid(const std::string& id, const std::string& sid) {
  SQLite::Statement q(db_, "UPDATE conversations SET sid = ? WHERE n = ?");
  q.bind(1, sid);
  q.bind(2, conversation_number(id));
  q.exec();
}

void lead_store::set_conversation_status(const std::string& id, const std::string& status,
                                         const std::string& now) {
  SQLite::Statement q(db_,
                      "UPDATE conversations SET status = ?, closed_at = CASE WHEN ? = 'closed' THEN ? "
                      "ELSE closed_at END WHERE n = ?");
  q.bind(1, status);
  q.bind(2, status);
  q.bind(3, now);
  q.bind(4, conversation_number(id));
  q.exec();
}

std::vector<std::string> lead_store::conversation_leads(const std::string& id, bool active_only) {
  SQLite::Statement q(db_, active_only ? "SELECT id FROM leads WHERE conversation_id = ? AND status IN "
                                         "('opening', 'open') ORDER BY created_at, id"
                                       : "SELECT id FROM leads WHERE conversation_id = ? ORDER BY created_at, id");
  q.bind(1, id);
  std::vector<std::string> out;
  while (q.executeStep())
    out.push_back(text(q, 0));
  return out;
}

void lead_store::insert_lead(const lead_row& l) {
  SQLite::Statement q(db_,
                      "INSERT INTO leads(id, status, dealer_id, location_id, customer_name, customer_phone, "
                      "message, location_phone, proxy_number, conversation_id, created_at) "
                      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, l.id);
  q.bind(2, l.status);
  q.bind(3, l.dealer_id);
  q.bind(4, l.location_id);
  q.bind(5, l.customer_name);
  q.bind(6, l.customer_phone);
  q.bind(7, l.message);
  q.bind(8, l.location_phone);
  q.bind(9, l.proxy_number);
  q.bind(10, l.conversation_id);
  q.bind(11, l.created_at);
  q.exec();
}

std::optional<lead_row> lead_store::lead(const std::string& id) {
  SQLite::Statement q(db_, std::string{"SELECT "} + lead_columns + " FROM leads WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep())
    return std::nullopt;
  return lead_of(q);
}

void lead_store::set_lead_open(const std::string& id, const std::string& now, std::int64_t now_ms) {
  SQLite::Statement q(db_,
                      "UPDATE leads SET status = 'open', opened_at = ?, last_activity_ms = ? "
                      "WHERE id = ? AND status = 'opening'");
  q.bind(1, now);
  q.bind(2, now_ms);
  q.bind(3, id);
  q.exec();
}

void lead_store::set_lead_closed(const std::string& id, const std::string& status, const std::string& reason,
                                 const std::string& replaced_by, const std::string& error,
                                 const std::string& now) {
  SQLite::Statement q(db_,
                      "UPDATE leads SET status = ?, close_reason = ?, replaced_by = ?, error = ?, closed_at = ? "
                      "WHERE id = ?");
  q.bind(1, status);
  q.bind(2, reason);
  q.bind(3, replaced_by);
  q.bind(4, error);
  q.bind(5, now);
  q.bind(6, id);
  q.exec();
}

void lead_store::count_inbound(const std::string& id, bool from_customer, std::int64_t now_ms) {
  SQLite::Statement q(db_, from_customer
                               ? "UPDATE leads SET customer_messages = customer_messages + 1, last_activity_ms = ? WHERE id = ?"
                               : "UPDATE leads SET dealer_messages = dealer_messages + 1, last_activity_ms = ? WHERE id = ?");
  q.bind(1, now_ms);
  q.bind(2, id);
  q.exec();
}

void lead_store::count_reminder(const std::string& id) {
  SQLite::Statement q(db_, "UPDATE leads SET reminders_sent = reminders_sent + 1 WHERE id = ?");
  q.bind(1, id);
  q.exec();
}

// --- invocations ----------------------------------------------------------------------------------

std::uint64_t lead_store::create_invocation(const invocation_spec& spec, const std::string& now,
                                            std::int64_t now_ms) {
  SQLite::Statement q(db_,
                      "INSERT INTO invocations(service, key, handler, body, status, created_at, updated_at) "
                      "VALUES(?, ?, ?, ?, 'running', ?, ?)");
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
    SQLite::Statement k(db_,
                        "INSERT OR REPLACE INTO idempotency(service, idempotency_key, invocation, created_ms) "
                        "VALUES(?, ?, ?, ?)");
    k.bind(1, spec.service);
    k.bind(2, spec.idempotency_key);
    k.bind(3, static_cast<std::int64_t>(n));
    k.bind(4, now_ms);
    k.exec();
  }
  return n;
}

std::optional<std::uint64_t> lead_store::idempotent(const std::string& service,
                                                    const std::string& idempotency_key, std::int64_t since_ms) {
  SQLite::Statement q(db_,
                      "SELECT invocation FROM idempotency WHERE service = ? AND idempotency_key = ? AND "
                      "created_ms >= ?");
  q.bind(1, service);
  q.bind(2, idempotency_key);
  q.bind(3, since_ms);
  if (!q.executeStep())
    return std::nullopt;
  return unsigned_of(q, 0);
}

std::optional<invocation_row> lead_store::invocation(std::uint64_t n) {
  SQLite::Statement q(db_, std::string{"SELECT "} + invocation_columns + " FROM invocations WHERE n = ?");
  q.bind(1, static_cast<std::int64_t>(n));
  if (!q.executeStep())
    return std::nullopt;
  return invocation_of(q);
}

std::vector<std::uint64_t> lead_store::running_invocations(const std::string& service) {
  SQLite::Statement q(db_, "SELECT n FROM invocations WHERE status = 'running' AND service = ? ORDER BY n");
  q.bind(1, service);
  std::vector<std::uint64_t> out;
  while (q.executeStep())
    out.push_back(unsigned_of(q, 0));
  return out;
}

std::vector<invocation_row> lead_store::invocations(const std::string& status, std::size_t limit) {
  SQLite::Statement q(db_, std::string{"SELECT "} + invocation_columns +
                               " FROM invocations WHERE (? = '' OR status = ?) ORDER BY n DESC LIMIT ?");
  q.bind(1, status);
  q.bind(2, status);
  q.bind(3, static_cast<std::int64_t>(limit));
  std::vector<invocation_row> out;
  while (q.executeStep())
    out.push_back(invocation_of(q));
  return out;
}

std::vector<invocation_row> lead_store::invocations_of(const std::string& service, const std::string& key_prefix) {
  SQLite::Statement q(db_, std::string{"SELECT "} + invocation_columns +
                               " FROM invocations WHERE service = ? AND substr(key, 1, ?) = ? ORDER BY n");
  q.bind(1, service);
  q.bind(2, static_cast<std::int64_t>(key_prefix.size()));
  q.bind(3, key_prefix);
  std::vector<invocation_row> out;
  while (q.executeStep())
    out.push_back(invocation_of(q));
  return out;
}

void lead_store::set_invocation(std::uint64_t n, const std::string& status, const std::string& result,
                                const std::string& error, const std::string& now) {
  SQLite::Statement q(db_, "UPDATE invocations SET status = ?, result = ?, error = ?, updated_at = ? WHERE n = ?");
  q.bind(1, status);
  q.bind(2, result);
  q.bind(3, error);
  q.bind(4, now);
  q.bind(5, static_cast<std::int64_t>(n));
  q.exec();
}

std::optional<step_row> lead_store::step(std::uint64_t invocation, const std::string& name) {
  SQLite::Statement q(db_,
                      "SELECT name, status, attempts, result, error, updated_at FROM steps "
                      "WHERE invocation = ? AND name = ?");
  q.bind(1, static_cast<std::int64_t>(invocation));
  q.bind(2, name);
  if (!q.executeStep())
    return std::nullopt;
  return step_row{text(q, 0), text(q, 1), q.getColumn(2).getInt64(), text(q, 3), text(q, 4), text(q, 5)};
}

void lead_store::record_step(std::uint64_t invocation, const step_row& s) {
  SQLite::Statement q(db_,
                      "INSERT OR REPLACE INTO steps(invocation, name, status, attempts, result, error, updated_at) "
                      "VALUES(?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, static_cast<std::int64_t>(invocation));
  q.bind(2, s.name);
  q.bind(3, s.status);
  q.bind(4, s.attempts);
  q.bind(5, s.result);
  q.bind(6, s.error);
  q.bind(7, s.updated_at);
  q.exec();
}

std::vector<step_row> lead_store::steps(std::uint64_t invocation) {
  SQLite::Statement q(db_,
                      "SELECT name, status, attempts, result, error, updated_at FROM steps "
                      "WHERE invocation = ? ORDER BY rowid");
  q.bind(1, static_cast<std::int64_t>(invocation));
  std::vector<step_row> out;
  while (q.executeStep())
    out.push_back(step_row{text(q, 0), text(q, 1), q.getColumn(2).getInt64(), text(q, 3), text(q, 4), text(q, 5)});
  return out;
}

void lead_store::reset_step_attempts(std::uint64_t invocation) {
  SQLite::Statement q(db_, "UPDATE steps SET attempts = 0 WHERE invocation = ? AND status != 'done'");
  q.bind(1, static_cast<std::int64_t>(invocation));
  q.exec();
}

// --- timers -------------------------------------------------------------------------------------

std::uint64_t lead_store::add_timer(const timer_row& t) {
  SQLite::Statement q(db_,
                      "INSERT INTO timers(due_ms, service, key, handler, body, status) VALUES(?, ?, ?, ?, ?, 'pending')");
  q.bind(1, t.due_ms);
  q.bind(2, t.service);
  q.bind(3, t.key);
  q.bind(4, t.handler);
  q.bind(5, t.body);
  q.exec();
  return static_cast<std::uint64_t>(db_.getLastInsertRowid());
}

std::optional<std::int64_t> lead_store::next_timer_due() {
  SQLite::Statement q(db_, "SELECT min(due_ms) FROM timers WHERE status = 'pending'");
  if (!q.executeStep() || q.getColumn(0).isNull())
    return std::nullopt;
  return q.getColumn(0).getInt64();
}

std::vector<timer_row> lead_store::due_timers(std::int64_t now_ms, std::size_t limit) {
  SQLite::Statement q(db_,
                      "SELECT n, due_ms, service, key, handler, body FROM timers WHERE status = 'pending' "
                      "AND due_ms <= ? ORDER BY due_ms LIMIT ?");
  q.bind(1, now_ms);
  q.bind(2, static_cast<std::int64_t>(limit));
  std::vector<timer_row> out;
  while (q.executeStep())
    out.push_back(timer_row{unsigned_of(q, 0), q.getColumn(1).getInt64(), text(q, 2), text(q, 3), text(q, 4),
                            text(q, 5)});
  return out;
}

void lead_store::set_timer_status(std::uint64_t n, const std::string& status) {
  SQLite::Statement q(db_, "UPDATE timers SET status = ? WHERE n = ?");
  q.bind(1, status);
  q.bind(2, static_cast<std::int64_t>(n));
  q.exec();
}

// --- inbound messages and form leads ------------------------------------------------------------------

bool lead_store::record_inbound(const std::string& message_sid, const std::string& conversation_sid,
                                const std::string& author, const std::string& now) {
  SQLite::Statement q(db_,
                      "INSERT OR IGNORE INTO inbound(message_sid, conversation_sid, author, received_at) "
                      "VALUES(?, ?, ?, ?)");
  q.bind(1, message_sid);
  q.bind(2, conversation_sid);
  q.bind(3, author);
  q.bind(4, now);
  return q.exec() == 1;
}

void lead_store::insert_form_lead(const std::string& id, const std::string& body, const std::string& now) {
  SQLite::Statement q(db_, "INSERT INTO form_leads(id, body, received_at) VALUES(?, ?, ?)");
  q.bind(1, id);
  q.bind(2, body);
  q.bind(3, now);
  q.exec();
}

std::optional<std::pair<std::string, std::string>> lead_store::form_lead(const std::string& id) {
  SQLite::Statement q(db_, "SELECT body, received_at FROM form_leads WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep())
    return std::nullopt;
  return std::make_pair(text(q, 0), text(q, 1));
}

} // namespace switchboard::adapters::sqlite
