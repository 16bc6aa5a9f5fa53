#pragma once

// The durable state of lead conversations in `<data_dir>/leads.db` (SQLite, WAL, synchronous
// FULL: a commit is on disk before it returns): dealers' locations, leads, conversations, the
// invocation journal (invocations, their steps and idempotency keys), durable timers, inbound
// message ids and form leads.
//
// The rules that must hold under concurrency are constraints of the schema, not checks in
// code: one active lead per (customer phone, dealer, location) and one active conversation
// per (customer phone, location phone) are partial unique indexes, and every decision that
// reads and then writes runs in one `write` transaction (BEGIN IMMEDIATE), which SQLite
// serializes across connections.
//
// One lead_store is one connection: use it from one thread at a time. Every thread that
// touches the database opens its own.

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace switchboard::adapters::sqlite {

struct location_row {
  std::string dealer_id, dealer_name, location_id, name, phone;
};

struct lead_row {
  std::string id;
  std::string status;  ///< opening | open | closed | failed
  std::string dealer_id, location_id, customer_name, customer_phone, message;
  std::string location_phone, proxy_number, conversation_id;
  std::string created_at, opened_at, closed_at, close_reason, replaced_by, error;
  std::int64_t customer_messages = 0, dealer_messages = 0, reminders_sent = 0;
  std::int64_t last_activity_ms = 0;  ///< ms since the epoch: opened, or the last inbound message
};

struct conversation_row {
  std::string id;           ///< "cv-N"
  std::string status;       ///< opening | open | closing | closed
  std::string customer_phone, location_phone, proxy_number;
  std::string sid;          ///< Twilio's CH sid once known
  std::string created_at, closed_at;
  std::string unique_name() const { return "sb-" + id; }
};

struct invocation_row {
  std::uint64_t n = 0;
  std::string service, key, handler, body;
  std::string status;  ///< running | done | failed | parked | cancelled
  std::string result;  ///< JSON text, when done
  std::string error;   ///< failed, parked: why
  std::string created_at, updated_at;
  std::string id() const { return "inv-" + std::to_string(n); }
};

struct step_row {
  std::string name;
  std::string status;  ///< started (outcome unknown) | retry (known not done) | done
  std::int64_t attempts = 0;
  std::string result, error, updated_at;
};

struct timer_row {
  std::uint64_t n = 0;
  std::int64_t due_ms = 0;
  std::string service, key, handler, body;
};

/// A new invocation, as `create_invocation` takes it.
struct invocation_spec {
  std::string service, key, handler, body;
  std::string idempotency_key;  ///< "" = none
};

class lead_store {
public:
  /// Opens (creating if needed) the database. Throws std::runtime_error naming the file.
  explicit lead_store(const std::string& path);
  ~lead_store();
  lead_store(const lead_store&) = delete;
  lead_store& operator=(const lead_store&) = delete;

  /// Runs `fn` in one BEGIN IMMEDIATE transaction and commits (on disk when it returns); rolls
  /// back and rethrows if `fn` throws. Not reentrant.
  void write(const std::function<void()>& fn);

  // --- dealers ------------------------------------------------------------------------------
  /// Creates or changes a location; returns its previous phone ("" if it is new).
  std::string upsert_location(const location_row& l);
  /// A location as the configuration file gives it; returns the phone now in force. The file's
  /// phone applies when it is new or differs from the one the file gave last time; otherwise a
  /// phone set at run time (`upsert_location`) stays.
  std::string seed_location(const location_row& l);
  std::optional<location_row> location(const std::string& dealer, const std::string& location);
  std::vector<location_row> locations(const std::string& dealer);

  // --- leads and conversations ----------------------------------------------------------------
  std::optional<std::string> active_lead(const std::string& customer_phone, const std::string& dealer,
                                         const std::string& location);
  std::optional<conversation_row> active_conversation(const std::string& customer_phone,
                                                      const std::string& location_phone);
  /// Proxy numbers of conversations not yet closed that bind `customer_phone` or `location_phone`.
  std::set<std::string> proxies_in_use(const std::string& customer_phone, const std::string& location_phone);
  conversation_row insert_conversation(const std::string& customer_phone, const std::string& location_phone,
                                       const std::string& proxy, const std::string& now);
  std::optional<conversation_row> conversation(const std::string& id);
  std::optional<conversation_row> conversation_by_sid(const std::string& sid);
  void set_conversation_sid(const std::string& id, const std::string& sid);
  void set_conversation_status(const std::string& id, const std::string& status, const std::string& now);
  /// Leads of a conversation; only the active ones (opening, open) when `active_only`.
  std::vector<std::string> conversation_leads(const std::string& id, bool active_only);

  void insert_lead(const lead_row& l);
  std::optional<lead_row> lead(const std::string& id);
  void set_lead_open(const std::string& id, const std::string& now, std::int64_t now_ms);
  void set_lead_closed(const std::string& id, const std::string& status, const std::string& reason,
                       const std::string& replaced_by, const std::string& error, const std::string& now);
  /// Counts an inbound message of the customer (`from_customer`) or of the location.
  void count_inbound(const std::string& id, bool from_customer, std::int64_t now_ms);
  void count_reminder(const std::string& id);

  // --- invocations ------------------------------------------------------------------------------
  /// Inserts a running invocation (and its idempotency key); returns its number.
  std::uint64_t create_invocation(const invocation_spec& spec, const std::string& now, std::int64_t now_ms);
  /// The invocation that took `idempotency_key` in `service` at or after `since_ms`.
  std::optional<std::uint64_t> idempotent(const std::string& service, const std::string& idempotency_key,
                                          std::int64_t since_ms);
  std::optional<invocation_row> invocation(std::uint64_t n);
  std::vector<std::uint64_t> running_invocations(const std::string& service);
  /// Invocations in `status` ("" = any), newest first.
  std::vector<invocation_row> invocations(const std::string& status, std::size_t limit);
  /// Invocations of `service` whose key starts with `key_prefix`.
  std::vector<invocation_row> invocations_of(const std::string& service, const std::string& key_prefix);
  void set_invocation(std::uint64_t n, const std::string& status, const std::string& result,
                      const std::string& error, const std::string& now);

  std::optional<step_row> step(std::uint64_t invocation, const std::string& name);
  void record_step(std::uint64_t invocation, const step_row& s);
  std::vector<step_row> steps(std::uint64_t invocation);
  /// Lets a parked invocation try its failed steps again from attempt 1.
  void reset_step_attempts(std::uint64_t invocation);

  // --- timers -----------------------------------------------------------------------------------
  std::uint64_t add_timer(const timer_row& t);
  std::optional<std::int64_t> next_timer_due();
  std::vector<timer_row> due_timers(std::int64_t now_ms, std::size_t limit);
  void set_timer_status(std::uint64_t n, const std::string& status);

  // --- inbound messages and form leads --------------------------------------------------------------
  /// Records an inbound message id; false if it was recorded before (a replay).
  bool record_inbound(const std::string& message_sid, const std::string& conversation_sid,
                      const std::string& author, const std::string& now);
  void insert_form_lead(const std::string& id, const std::string& body, const std::string& now);
  /// (body, received_at) of a form lead.
  std::optional<std::pair<std::string, std::string>> form_lead(const std::string& id);

private:
  SQLite::Database db_;
};

} // namespace switchboard::adapters::sqlite
