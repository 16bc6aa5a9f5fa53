#include "adapters/sqlite/lead_store.hpp"

#include "adapters/sqlite/statements.hpp"

#include <stdexcept>

namespace switchboard::adapters::sqlite {

using internal::text;
using internal::unsigned_of;

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
CREATE INDEX IF NOT EXISTS conversations_unclosed_customer
  ON conversations(customer_phone) WHERE status != 'closed';
CREATE INDEX IF NOT EXISTS conversations_unclosed_location
  ON conversations(location_phone) WHERE status != 'closed';
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
CREATE TABLE IF NOT EXISTS inbound(
  message_sid TEXT PRIMARY KEY, conversation_sid TEXT NOT NULL, author TEXT NOT NULL,
  received_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS form_leads(
  id TEXT PRIMARY KEY, body TEXT NOT NULL, received_at TEXT NOT NULL);
)sql";

constexpr const char* lead_columns =
    "id, status, dealer_id, location_id, customer_name, customer_phone, message, location_phone, "
    "proxy_number, conversation_id, created_at, opened_at, closed_at, close_reason, replaced_by, "
    "error, "
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

}  // namespace

lead_store::lead_store(SQLite::Database& db) : db_(db), statements_(db) {
  SQLite::Transaction creating(db_);  // the tables and indexes in one commit, not one each
  db_.exec(schema);
  creating.commit();
}

lead_store::~lead_store() = default;

// --- dealers ------------------------------------------------------------------------------------

std::string lead_store::upsert_location(const location_row& l) {
  std::string previous;
  auto get_use = statements_("SELECT phone FROM locations WHERE dealer_id = ? AND location_id = ?");
  auto& get = *get_use;
  get.bind(1, l.dealer_id);
  get.bind(2, l.location_id);
  if (get.executeStep())
    previous = text(get, 0);
  auto put_use = statements_(
      "INSERT INTO locations(dealer_id, location_id, dealer_name, name, phone) "
      "VALUES(?, ?, ?, ?, ?) ON CONFLICT(dealer_id, location_id) DO UPDATE SET "
      "dealer_name = excluded.dealer_name, name = excluded.name, phone = excluded.phone");
  auto& put = *put_use;
  put.bind(1, l.dealer_id);
  put.bind(2, l.location_id);
  put.bind(3, l.dealer_name);
  put.bind(4, l.name);
  put.bind(5, l.phone);
  put.exec();
  return previous;
}

std::string lead_store::seed_location(const location_row& l) {
  auto get_use = statements_(
      "SELECT phone, config_phone FROM locations WHERE dealer_id = ? AND location_id = ?");
  auto& get = *get_use;
  get.bind(1, l.dealer_id);
  get.bind(2, l.location_id);
  std::string phone = l.phone;
  if (get.executeStep() && text(get, 1) == l.phone)
    phone = text(get, 0);  // the file did not change: a change made at run time stays
  get.reset();
  auto put_use = statements_(
      "INSERT INTO locations(dealer_id, location_id, dealer_name, name, phone, config_phone) "
      "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(dealer_id, location_id) DO UPDATE SET "
      "dealer_name = excluded.dealer_name, name = excluded.name, phone = excluded.phone, "
      "config_phone = excluded.config_phone");
  auto& put = *put_use;
  put.bind(1, l.dealer_id);
  put.bind(2, l.location_id);
  put.bind(3, l.dealer_name);
  put.bind(4, l.name);
  put.bind(5, phone);
  put.bind(6, l.phone);
  put.exec();
  return phone;
}

std::optional<location_row> lead_store::location(const std::string& dealer,
                                                 const std::string& location) {
  auto q_use = statements_(
      "SELECT dealer_id, dealer_name, location_id, name, phone FROM locations "
      "WHERE dealer_id = ? AND location_id = ?");
  auto& q = *q_use;
  q.bind(1, dealer);
  q.bind(2, location);
  if (!q.executeStep())
    return std::nullopt;
  return location_row{text(q, 0), text(q, 1), text(q, 2), text(q, 3), text(q, 4)};
}

std::vector<location_row> lead_store::locations(const std::string& dealer) {
  auto q_use = statements_(
      "SELECT dealer_id, dealer_name, location_id, name, phone FROM locations "
      "WHERE dealer_id = ? ORDER BY location_id");
  auto& q = *q_use;
  q.bind(1, dealer);
  std::vector<location_row> out;
  while (q.executeStep())
    out.push_back(location_row{text(q, 0), text(q, 1), text(q, 2), text(q, 3), text(q, 4)});
  return out;
}

// --- leads and conversations
// ------------------------------------------------------------------------

std::optional<std::string> lead_store::active_lead(const std::string& customer_phone,
                                                   const std::string& dealer,
                                                   const std::string& location) {
  auto q_use = statements_(
      "SELECT id FROM leads WHERE customer_phone = ? AND dealer_id = ? AND location_id = ? "
      "AND status IN ('opening', 'open')");
  auto& q = *q_use;
  q.bind(1, customer_phone);
  q.bind(2, dealer);
  q.bind(3, location);
  if (!q.executeStep())
    return std::nullopt;
  return text(q, 0);
}

std::optional<conversation_row> lead_store::active_conversation(const std::string& customer_phone,
                                                                const std::string& location_phone) {
  auto q_use =
      statements_(std::string{"SELECT "} + conversation_columns +
                  " FROM conversations WHERE customer_phone = ? AND location_phone = ? AND "
                  "status IN ('opening', 'open')");
  auto& q = *q_use;
  q.bind(1, customer_phone);
  q.bind(2, location_phone);
  if (!q.executeStep())
    return std::nullopt;
  return conversation_of(q);
}

proxy_use lead_store::proxies_in_use(const std::string& customer_phone,
                                     const std::string& location_phone) {
  // A number may be a customer in one conversation and a location in another: check both
  // ways. Two lookups in the partial indexes of conversations not yet closed, not a scan.
  auto q_use = statements_(
      "SELECT proxy_number, status FROM conversations WHERE status != 'closed' AND "
      "customer_phone IN (?1, ?2) "
      "UNION SELECT proxy_number, status FROM conversations WHERE status != 'closed' AND "
      "location_phone IN (?1, ?2)");
  auto& q = *q_use;
  q.bind(1, customer_phone);
  q.bind(2, location_phone);
  proxy_use out;
  std::set<std::string> active;
  while (q.executeStep()) {
    auto number = text(q, 0);
    if (text(q, 1) != "closing")
      active.insert(number);
    out.held.insert(std::move(number));
  }
  for (const auto& number : out.held)
    if (active.count(number) == 0)
      out.releasing.insert(number);
  return out;
}

conversation_row lead_store::insert_conversation(const std::string& customer_phone,
                                                 const std::string& location_phone,
                                                 const std::string& proxy, const std::string& now) {
  auto q_use = statements_(
      "INSERT INTO conversations(customer_phone, location_phone, proxy_number, status, "
      "created_at) VALUES(?, ?, ?, 'opening', ?)");
  auto& q = *q_use;
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
  auto q_use = statements_(std::string{"SELECT "} + conversation_columns +
                           " FROM conversations WHERE n = ?");
  auto& q = *q_use;
  q.bind(1, n);
  if (!q.executeStep())
    return std::nullopt;
  return conversation_of(q);
}

std::optional<conversation_row> lead_store::conversation_by_sid(const std::string& sid) {
  auto q_use = statements_(std::string{"SELECT "} + conversation_columns +
                           " FROM conversations WHERE sid = ? ORDER BY n DESC LIMIT 1");
  auto& q = *q_use;
  q.bind(1, sid);
  if (!q.executeStep())
    return std::nullopt;
  return conversation_of(q);
}

void lead_store::set_conversation_sid(const std::string& id, const std::string& sid) {
  auto q_use = statements_("UPDATE conversations SET sid = ? WHERE n = ?");
  auto& q = *q_use;
  q.bind(1, sid);
  q.bind(2, conversation_number(id));
  q.exec();
}

void lead_store::set_conversation_status(const std::string& id, const std::string& status,
                                         const std::string& now) {
  auto q_use = statements_(
      "UPDATE conversations SET status = ?, closed_at = CASE WHEN ? = 'closed' THEN ? "
      "ELSE closed_at END WHERE n = ?");
  auto& q = *q_use;
  q.bind(1, status);
  q.bind(2, status);
  q.bind(3, now);
  q.bind(4, conversation_number(id));
  q.exec();
}

std::vector<std::string> lead_store::conversation_leads(const std::string& id, bool active_only) {
  auto q_use = statements_(
      active_only ? "SELECT id FROM leads WHERE conversation_id = ? AND status IN "
                    "('opening', 'open') ORDER BY created_at, id"
                  : "SELECT id FROM leads WHERE conversation_id = ? ORDER BY created_at, id");
  auto& q = *q_use;
  q.bind(1, id);
  std::vector<std::string> out;
  while (q.executeStep())
    out.push_back(text(q, 0));
  return out;
}

void lead_store::insert_lead(const lead_row& l) {
  auto q_use = statements_(
      "INSERT INTO leads(id, status, dealer_id, location_id, customer_name, customer_phone, "
      "message, location_phone, proxy_number, conversation_id, created_at, closed_at, "
      "close_reason, error) "
      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  auto& q = *q_use;
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
  q.bind(12, l.closed_at);
  q.bind(13, l.close_reason);
  q.bind(14, l.error);
  q.exec();
}

std::optional<lead_row> lead_store::lead(const std::string& id) {
  auto q_use = statements_(std::string{"SELECT "} + lead_columns + " FROM leads WHERE id = ?");
  auto& q = *q_use;
  q.bind(1, id);
  if (!q.executeStep())
    return std::nullopt;
  return lead_of(q);
}

void lead_store::set_lead_open(const std::string& id, const std::string& now, std::int64_t now_ms) {
  auto q_use = statements_(
      "UPDATE leads SET status = 'open', opened_at = ?, last_activity_ms = ? "
      "WHERE id = ? AND status = 'opening'");
  auto& q = *q_use;
  q.bind(1, now);
  q.bind(2, now_ms);
  q.bind(3, id);
  q.exec();
}

void lead_store::set_lead_closed(const std::string& id, const std::string& status,
                                 const std::string& reason, const std::string& replaced_by,
                                 const std::string& error, const std::string& now) {
  auto q_use = statements_(
      "UPDATE leads SET status = ?, close_reason = ?, replaced_by = ?, error = ?, closed_at = ? "
      "WHERE id = ?");
  auto& q = *q_use;
  q.bind(1, status);
  q.bind(2, reason);
  q.bind(3, replaced_by);
  q.bind(4, error);
  q.bind(5, now);
  q.bind(6, id);
  q.exec();
}

void lead_store::count_inbound(const std::string& id, bool from_customer, std::int64_t now_ms) {
  auto q_use = statements_(from_customer ? "UPDATE leads SET customer_messages = customer_messages "
                                           "+ 1, last_activity_ms = ? WHERE id = ?"
                                         : "UPDATE leads SET dealer_messages = dealer_messages + "
                                           "1, last_activity_ms = ? WHERE id = ?");
  auto& q = *q_use;
  q.bind(1, now_ms);
  q.bind(2, id);
  q.exec();
}

void lead_store::count_reminder(const std::string& id) {
  auto q_use = statements_("UPDATE leads SET reminders_sent = reminders_sent + 1 WHERE id = ?");
  auto& q = *q_use;
  q.bind(1, id);
  q.exec();
}

// --- inbound messages and form leads
// ------------------------------------------------------------------

bool lead_store::record_inbound(const std::string& message_sid, const std::string& conversation_sid,
                                const std::string& author, const std::string& now) {
  auto q_use = statements_(
      "INSERT OR IGNORE INTO inbound(message_sid, conversation_sid, author, received_at) "
      "VALUES(?, ?, ?, ?)");
  auto& q = *q_use;
  q.bind(1, message_sid);
  q.bind(2, conversation_sid);
  q.bind(3, author);
  q.bind(4, now);
  return q.exec() == 1;
}

void lead_store::insert_form_lead(const std::string& id, const std::string& body,
                                  const std::string& now) {
  auto q_use = statements_("INSERT INTO form_leads(id, body, received_at) VALUES(?, ?, ?)");
  auto& q = *q_use;
  q.bind(1, id);
  q.bind(2, body);
  q.bind(3, now);
  q.exec();
}

std::optional<std::pair<std::string, std::string>> lead_store::form_lead(const std::string& id) {
  auto q_use = statements_("SELECT body, received_at FROM form_leads WHERE id = ?");
  auto& q = *q_use;
  q.bind(1, id);
  if (!q.executeStep())
    return std::nullopt;
  return std::make_pair(text(q, 0), text(q, 1));
}

}  // namespace switchboard::adapters::sqlite
