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

#include "adapters/sqlite/invocation_store.hpp"
#include "ports/lead_records.hpp"

#include "adapters/sqlite/statements.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace switchboard::adapters::sqlite {

// The rows are the port's (ports/lead_records.hpp); the names stay usable here.
using ports::conversation_row;
using ports::lead_row;
using ports::location_row;
using ports::proxy_use;

// The engine's rows, for the lead code that reads them (views, compensation).
using ports::invocation_row;
using ports::invocation_spec;
using ports::step_row;
using ports::timer_row;

class lead_store final : public ports::lead_records {
public:
  /// The lead tables in `db` (created if needed), beside the engine's (invocation_store.hpp),
  /// so that a lead change and its step record commit in one transaction. `db` must outlive it.
  explicit lead_store(SQLite::Database& db);
  ~lead_store() override;
  lead_store(const lead_store&) = delete;
  lead_store& operator=(const lead_store&) = delete;

  // --- dealers ------------------------------------------------------------------------------
  /// Creates or changes a location; returns its previous phone ("" if it is new).
  std::string upsert_location(const location_row& l) override;
  /// A location as the configuration file gives it; returns the phone now in force. The file's
  /// phone applies when it is new or differs from the one the file gave last time; otherwise a
  /// phone set at run time (`upsert_location`) stays.
  std::string seed_location(const location_row& l) override;
  std::optional<location_row> location(const std::string& dealer,
                                       const std::string& location) override;
  std::vector<location_row> locations(const std::string& dealer) override;

  // --- leads and conversations ----------------------------------------------------------------
  std::optional<std::string> active_lead(const std::string& customer_phone,
                                         const std::string& dealer,
                                         const std::string& location) override;
  std::optional<conversation_row> active_conversation(const std::string& customer_phone,
                                                      const std::string& location_phone) override;
  /// Proxy numbers of conversations not yet closed that bind `customer_phone` or
  /// `location_phone`; `releasing` are those held only by conversations that are closing.
  proxy_use proxies_in_use(const std::string& customer_phone,
                           const std::string& location_phone) override;
  conversation_row insert_conversation(const std::string& customer_phone,
                                       const std::string& location_phone, const std::string& proxy,
                                       const std::string& now) override;
  std::optional<conversation_row> conversation(const std::string& id) override;
  std::optional<conversation_row> conversation_by_sid(const std::string& sid) override;
  void set_conversation_sid(const std::string& id, const std::string& sid) override;
  void set_conversation_status(const std::string& id, const std::string& status,
                               const std::string& now) override;
  /// Leads of a conversation; only the active ones (opening, open) when `active_only`.
  std::vector<std::string> conversation_leads(const std::string& id, bool active_only) override;

  void insert_lead(const lead_row& l) override;
  std::optional<lead_row> lead(const std::string& id) override;
  void set_lead_open(const std::string& id, const std::string& now, std::int64_t now_ms) override;
  void set_lead_closed(const std::string& id, const std::string& status, const std::string& reason,
                       const std::string& replaced_by, const std::string& error,
                       const std::string& now) override;
  /// Counts an inbound message of the customer (`from_customer`) or of the location.
  void count_inbound(const std::string& id, bool from_customer, std::int64_t now_ms) override;
  void count_reminder(const std::string& id) override;

  // --- inbound messages and form leads
  // --------------------------------------------------------------
  /// Records an inbound message id; false if it was recorded before (a replay).
  bool record_inbound(const std::string& message_sid, const std::string& conversation_sid,
                      const std::string& author, const std::string& now) override;
  void insert_form_lead(const std::string& id, const std::string& body,
                        const std::string& now) override;
  /// (body, received_at) of a form lead.
  std::optional<std::pair<std::string, std::string>> form_lead(const std::string& id) override;

private:
  SQLite::Database& db_;
  internal::statement_cache statements_;  // prepared once, on this connection
};

/// leads.db opened for one thread: the engine's journal and the lead tables on one connection.
class lead_database final : public ports::lead_database {
public:
  /// Opens (creating if needed) `path`. Throws std::runtime_error naming the file.
  explicit lead_database(const std::string& path) : file_(path), leads_(file_.db()) {}
  ports::invocation_journal& journal() override { return file_.journal(); }
  ports::lead_records& leads() override { return leads_; }
  SQLite::Database& db() noexcept { return file_.db(); }

private:
  durable_database file_;
  lead_store leads_;
};

}  // namespace switchboard::adapters::sqlite
