#pragma once

// The lead conversations' records, as a port: dealers' locations, leads, conversations,
// inbound message ids and form leads, and the database connection that carries them beside the
// durable engine's journal, so that a lead change and its step record commit in one
// transaction. adapters/sqlite/lead_store implements it over leads.db.
//
// The rules that must hold under concurrency are the implementation's constraints (one active
// lead per customer phone, dealer and location; one active conversation per customer phone and
// location phone), and every decision that reads and then writes runs inside one journal
// `write` transaction, which serializes writers.

#include "ports/invocation_journal.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace switchboard::ports {

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

/// The proxy numbers bound with a customer or a location now.
struct proxy_use {
  std::set<std::string> held;       ///< by a conversation not yet closed
  std::set<std::string> releasing;  ///< of `held`, those only closing conversations hold
};

/// The lead tables on one connection. Used from one thread at a time.
class lead_records {
public:
  virtual ~lead_records() = default;

  // --- dealers ------------------------------------------------------------------------------
  /// Creates or changes a location; returns its previous phone ("" if it is new).
  virtual std::string upsert_location(const location_row& l) = 0;
  /// A location as the configuration file gives it; returns the phone now in force. The file's
  /// phone applies when it is new or differs from the one the file gave last time; otherwise a
  /// phone set at run time (`upsert_location`) stays.
  virtual std::string seed_location(const location_row& l) = 0;
  virtual std::optional<location_row> location(const std::string& dealer,
                                               const std::string& location) = 0;
  virtual std::vector<location_row> locations(const std::string& dealer) = 0;

  // --- leads and conversations ----------------------------------------------------------------
  virtual std::optional<std::string> active_lead(const std::string& customer_phone,
                                                 const std::string& dealer,
                                                 const std::string& location) = 0;
  virtual std::optional<conversation_row> active_conversation(
      const std::string& customer_phone, const std::string& location_phone) = 0;
  /// Proxy numbers of conversations not yet closed that bind `customer_phone` or
  /// `location_phone`; `releasing` are those held only by conversations that are closing.
  virtual proxy_use proxies_in_use(const std::string& customer_phone,
                                   const std::string& location_phone) = 0;
  virtual conversation_row insert_conversation(const std::string& customer_phone,
                                               const std::string& location_phone,
                                               const std::string& proxy,
                                               const std::string& now) = 0;
  virtual std::optional<conversation_row> conversation(const std::string& id) = 0;
  virtual std::optional<conversation_row> conversation_by_sid(const std::string& sid) = 0;
  virtual void set_conversation_sid(const std::string& id, const std::string& sid) = 0;
  virtual void set_conversation_status(const std::string& id, const std::string& status,
                                       const std::string& now) = 0;
  /// Leads of a conversation; only the active ones (opening, open) when `active_only`.
  virtual std::vector<std::string> conversation_leads(const std::string& id, bool active_only) = 0;

  virtual void insert_lead(const lead_row& l) = 0;
  virtual std::optional<lead_row> lead(const std::string& id) = 0;
  virtual void set_lead_open(const std::string& id, const std::string& now,
                             std::int64_t now_ms) = 0;
  virtual void set_lead_closed(const std::string& id, const std::string& status,
                               const std::string& reason, const std::string& replaced_by,
                               const std::string& error, const std::string& now) = 0;
  /// Counts an inbound message of the customer (`from_customer`) or of the location.
  virtual void count_inbound(const std::string& id, bool from_customer, std::int64_t now_ms) = 0;
  virtual void count_reminder(const std::string& id) = 0;

  // --- inbound messages and form leads
  // --------------------------------------------------------------
  /// Records an inbound message id; false if it was recorded before (a replay).
  virtual bool record_inbound(const std::string& message_sid, const std::string& conversation_sid,
                              const std::string& author, const std::string& now) = 0;
  virtual void insert_form_lead(const std::string& id, const std::string& body,
                                const std::string& now) = 0;
  /// (body, received_at) of a form lead.
  virtual std::optional<std::pair<std::string, std::string>> form_lead(const std::string& id) = 0;
};

/// One connection to the lead database: the engine's journal and the lead records on it.
class lead_database : public durable_connection {
public:
  virtual lead_records& leads() = 0;
};

}  // namespace switchboard::ports
