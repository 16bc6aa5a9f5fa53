#pragma once

// The durable state of lead conversations in `<data_dir>/leads.db`, beside the engine's
// invocation journal (invocation_store.hpp) on the same connection: dealers' locations, leads,
// conversations, inbound message ids and form leads.
//
// The rules that must hold under concurrency are constraints of the schema, not checks in
// code: one active lead per (customer phone, dealer, location) and one active conversation
// per (customer phone, location phone) are partial unique indexes, and every decision that
// reads and then writes runs in one journal `write` transaction (BEGIN IMMEDIATE), which
// SQLite serializes across connections.
//
// A lead_store uses its connection from one thread at a time; every thread opens its own.

#include "ports/invocation_journal.hpp"

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
  std::string id;      ///< "cv-N"
  std::string status;  ///< opening | open | closing | closed
  std::string customer_phone, location_phone, proxy_number;
  std::string sid;  ///< Twilio's CH sid once known
  std::string created_at, closed_at;
  std::string unique_name() const { return "sb-" + id; }
};

// The engine's rows, for the lead code that reads them (views, compensation).
using ports::invocation_row;
using ports::invocation_spec;
using ports::step_row;
using ports::timer_row;

/// The proxy numbers bound with a customer or a location now.
struct proxy_use {
  std::set<std::string> held;       ///< by a conversation not yet closed
  std::set<std::string> releasing;  ///< of `held`, those only closing conversations hold
};

class lead_store {
public:
  /// The lead tables in `db` (created if needed), beside the engine's (invocation_store.hpp),
  /// so that a lead change and its step record commit in one transaction. `db` must outlive it.
  explicit lead_store(SQLite::Database& db);
  ~lead_store();
  lead_store(const lead_store&) = delete;
  lead_store& operator=(const lead_store&) = delete;

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
  std::optional<std::string> active_lead(const std::string& customer_phone,
                                         const std::string& dealer, const std::string& location);
  std::optional<conversation_row> active_conversation(const std::string& customer_phone,
                                                      const std::string& location_phone);
  /// Proxy numbers of conversations not yet closed that bind `customer_phone` or
  /// `location_phone`; `releasing` are those held only by conversations that are closing.
  proxy_use proxies_in_use(const std::string& customer_phone, const std::string& location_phone);
  conversation_row insert_conversation(const std::string& customer_phone,
                                       const std::string& location_phone, const std::string& proxy,
                                       const std::string& now);
  std::optional<conversation_row> conversation(const std::string& id);
  std::optional<conversation_row> conversation_by_sid(const std::string& sid);
  void set_conversation_sid(const std::string& id, const std::string& sid);
  void set_conversation_status(const std::string& id, const std::string& status,
                               const std::string& now);
  /// Leads of a conversation; only the active ones (opening, open) when `active_only`.
  std::vector<std::string> conversation_leads(const std::string& id, bool active_only);

  void insert_lead(const lead_row& l);
  std::optional<lead_row> lead(const std::string& id);
  void set_lead_open(const std::string& id, const std::string& now, std::int64_t now_ms);
  void set_lead_closed(const std::string& id, const std::string& status, const std::string& reason,
                       const std::string& replaced_by, const std::string& error,
                       const std::string& now);
  /// Counts an inbound message of the customer (`from_customer`) or of the location.
  void count_inbound(const std::string& id, bool from_customer, std::int64_t now_ms);
  void count_reminder(const std::string& id);

  // --- inbound messages and form leads
  // --------------------------------------------------------------
  /// Records an inbound message id; false if it was recorded before (a replay).
  bool record_inbound(const std::string& message_sid, const std::string& conversation_sid,
                      const std::string& author, const std::string& now);
  void insert_form_lead(const std::string& id, const std::string& body, const std::string& now);
  /// (body, received_at) of a form lead.
  std::optional<std::pair<std::string, std::string>> form_lead(const std::string& id);

private:
  SQLite::Database& db_;
};

}  // namespace switchboard::adapters::sqlite
