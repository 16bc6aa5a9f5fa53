#pragma once

// Inside the leads job: the keyed services it runs on the durable engine ("leads",
// "conversations", "dealers", "forwards"), their handlers, and the HTTP side that submits to
// them. Split by concern: conversations.cpp (Twilio conversations), lead_service.cpp (leads,
// dealers, form-lead forwards), views.cpp (what GET answers), job.cpp (lifecycle, requests,
// webhooks).

#include "core/lead_rules.hpp"
#include "engine/durable/invocations.hpp"
#include "jobs/job.hpp"
#include "jobs/leads/job.hpp"
#include "ports/lead_records.hpp"
#include "ports/twilio.hpp"
#include "switchboard/keyed.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::jobs::leads {

namespace json = boost::json;
using actors::step_context;
using actors::step_retry;
using actors::step_terminal;
using ports::conversation_row;
using ports::invocation_row;
using ports::lead_records;
using ports::lead_row;
using ports::location_row;
namespace tw = ports::twilio;

/// One runner's connection: leads.db (the engine's journal and the lead records on one
/// connection, so one transaction covers both) and the runner's Twilio client.
class lead_connection final : public ports::durable_connection {
public:
  lead_connection(std::unique_ptr<ports::lead_database> db,
                  const std::function<std::unique_ptr<tw::twilio_api>()>& make_twilio)
      : db_(std::move(db)), leads(db_->leads()), make_twilio_(make_twilio) {}

  ports::invocation_journal& journal() override { return db_->journal(); }

private:
  std::unique_ptr<ports::lead_database> db_;  // before `leads`, which refers into it

public:
  lead_records& leads;

  /// This runner's Twilio client, made on first use. Throws step_terminal when it cannot be.
  tw::twilio_api& twilio();

private:
  const std::function<std::unique_ptr<tw::twilio_api>()>& make_twilio_;
  std::unique_ptr<tw::twilio_api> twilio_;
};

inline lead_connection& connection_of(step_context& ctx) {
  return ctx.connection<lead_connection>();
}
inline lead_records& store_of(step_context& ctx) { return connection_of(ctx).leads; }
inline tw::twilio_api& twilio_of(step_context& ctx) { return connection_of(ctx).twilio(); }

// --- answers and JSON (views.cpp)
// ------------------------------------------------------------------
keyed_answer answer(int status, json::value body);
keyed_answer error(int status, const std::string& why, json::object extra = {});
std::string str(const json::object& o, const char* key);
json::value lead_json(const lead_row& l, const std::string& conversation_sid);
json::value invocation_json(const actors::invocation_view& v);
std::optional<std::uint64_t> invocation_number(const std::string& id);

// --- Twilio answers as step outcomes (conversations.cpp) ---------------------------------------
/// The body when the call succeeded, else step_retry (retryable, ambiguous) or step_terminal.
json::value ok_or_throw(const tw::call_result& r);
/// A read done to find out what happened: the body, nothing for "not found", else step_retry.
std::optional<json::value> lookup(const tw::call_result& r);
/// What a search of a Twilio list does after one record.
enum class list_search { next, stop };
/// Searches a Twilio list from its `first` page (an answer of one of its list calls), following
/// its next-page link (`meta.next_page_url` of the v1 APIs, `next_page_uri` of the 2010 API) for
/// at most `max_pages` pages. `visit` sees each record of `key` and may set its answer; it
/// returns `stop` to end the search. Returns the answer, or nullopt if none was set. A failed
/// read is a step_retry (see lookup); more pages than `max_pages` a step_retry too.
std::optional<json::value> search_list(
    tw::twilio_api& twilio, const tw::call_result& first, const char* key, int max_pages,
    const std::function<list_search(const json::object&, std::optional<json::value>&)>& visit);

// --- closing (conversations.cpp): written once, used by every path that ends a lead ----------
/// Marks conversation `c` closing and creates its close invocation (returned, to dispatch after
/// the commit). Inside a write transaction.
std::uint64_t begin_conversation_close(lead_connection& c, const conversation_row& conv);
/// If conversation `id` is active and no active lead uses it any more: marks it closing and
/// returns true (its close invocation is the caller's to make). Inside a write transaction.
bool claim_conversation_release(lead_connection& c, const std::string& id);
/// claim_conversation_release, and then its close invocation (returned, to dispatch).
std::optional<std::uint64_t> release_conversation(lead_connection& c, const std::string& id);
/// Ends lead `id` (closed or failed, with its reason) and releases its conversation. Inside a
/// write transaction; returns the close invocation to dispatch, if one was made.
std::optional<std::uint64_t> end_lead(lead_connection& c, const std::string& id,
                                      core::lead_status status, const std::string& reason,
                                      const std::string& replaced_by, const std::string& error);

/// The handlers and the HTTP side share this: the configuration and the engine.
struct lead_services {
  config cfg;
  const secrets* env = nullptr;
  std::function<std::string()> listen_address;
  lead_adapters outside;  ///< leads.db, Twilio clients, webhook signatures; outlive the engine
  std::unique_ptr<actors::invocation_engine> engine;
  /// Submits answered 503 because no proxy number was free (figures: leads_status()).
  std::atomic<std::uint64_t> pool_full_refusals{0};
  /// The Retry-After of that 503: about how long a lead takes to close and free a number.
  static constexpr int pool_full_retry_after_s = 30;

  // conversations.cpp
  json::value conversation_open(step_context& ctx);
  json::value conversation_close(step_context& ctx);
  std::vector<std::uint64_t> conversation_failed(lead_connection& c, const invocation_row& row,
                                                 const std::string& why);

  // lead_service.cpp
  json::value send_once(step_context& ctx, const std::string& step, const std::string& sid,
                        const std::string& body, const std::string& lead_id);
  std::string render(lead_records& store, const std::string& tmpl, const lead_row& l);
  json::value lead_submit(step_context& ctx);
  json::value lead_close(step_context& ctx, const std::string& reason);
  json::value lead_inbound(step_context& ctx);
  json::value lead_remind(step_context& ctx);
  json::value lead_expire(step_context& ctx);
  std::vector<std::uint64_t> lead_failed(lead_connection& c, const invocation_row& row,
                                         const std::string& why);
  json::value dealer_set_location(step_context& ctx);
  json::value forward(step_context& ctx);
  /// The services above, as the engine takes them.
  std::vector<actors::service_spec> specs();

  // views.cpp: what GET answers, read beside the runners on the API's connection
  void with_leads(const std::function<void(lead_connection&)>& fn);
  std::optional<lead_row> read_lead(const std::string& id, std::string* sid = nullptr);
  keyed_answer lead_answer(const std::string& id, int status, const std::string& invocation);
  keyed_answer get(const keyed_request& r);

  // job.cpp: requests that submit invocations
  std::string webhook_url() const;
  keyed_answer outcome_of(std::uint64_t n,
                          const std::function<keyed_answer(const json::value& result)>& done);
  keyed_answer submit(const std::string& id, const std::string& body_text,
                      const std::string& idempotency_key);
  keyed_answer set_location(const std::string& dealer, const std::string& body_text);
  keyed_answer form_lead(const std::string& body_text, const std::string& idempotency_key);
};

}  // namespace switchboard::jobs::leads
