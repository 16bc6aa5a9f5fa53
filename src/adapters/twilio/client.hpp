#pragma once

// switchboard's client for the Twilio REST calls its writers make: Sync documents and map items,
// Conversations (conversations, SMS participants, messages, webhooks) and TaskRouter workers.
// Each call answers with a `call_result` whose `outcome` says what the caller may do next, so
// retry and reconciliation policy lives with the caller, not here: this client never retries.
//
// **These calls BLOCK** for up to connect_timeout + write_timeout + read_timeout. Never make them
// on a CAF scheduler thread (an ordinary event-based actor): make them from a detached actor
// (`spawn<caf::detached>`) or a dedicated thread that owns its client.
//
// Endpoints: by default the real hosts (https://sync.twilio.com, https://conversations.twilio.com,
// https://taskrouter.twilio.com, https://api.twilio.com). With `base_url` =
// "http://127.0.0.1:PORT" the products map to the emulator's prefixes /sync, /conversations,
// /taskrouter and /api (see emulator.hpp).

#include "ports/twilio.hpp"
#include "switchboard/config.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::adapters::twilio {

// The calls' vocabulary and the interface this client implements are the port's
// (ports/twilio.hpp); the names stay usable here.
using ports::twilio::call_result;
using ports::twilio::conversation_fields;
using ports::twilio::conversation_state;
using ports::twilio::conversation_webhook_fields;
using ports::twilio::message_fields;
using ports::twilio::message_listing;
using ports::twilio::outcome;
using ports::twilio::sms_fields;
using ports::twilio::sms_listing;
using ports::twilio::to_string;

/// An HTTP answer, as `classify_answer` sees it.
struct http_answer {
  int status = 0;
  std::string body;
  std::string retry_after;  ///< the Retry-After header: seconds or an HTTP-date; empty if absent
  std::string etag;         ///< the ETag header; empty if absent
};

/// The outcome of an answer to a request that `only_reads` (GET) or writes. Pure; the client
/// uses it for every answer. `default_retry_after` applies when a retryable answer or a 503
/// names no delay; `now` turns an HTTP-date Retry-After into a delay.
call_result classify_answer(const http_answer& answer, bool only_reads,
                            std::chrono::milliseconds default_retry_after,
                            std::chrono::system_clock::time_point now);

struct client_options {
  /// "http://HOST:PORT" of a switchboard Twilio emulator: products under /sync, /conversations,
  /// /taskrouter. Empty: Twilio's own hosts.
  std::string base_url;
  /// Per-product base URLs ("https://sync.twilio.com", "http://127.0.0.1:8089/sync"); each one
  /// given wins over `base_url`. `api_url` is the 2010-04-01 API's (Messages).
  std::string sync_url, conversations_url, taskrouter_url, api_url;
  std::string account_sid;  ///< Basic auth user; from TWILIO_ACCOUNT_SID if empty
  std::string auth_token;   ///< Basic auth password; from TWILIO_AUTH_TOKEN if empty
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds write_timeout{10000};
  std::chrono::milliseconds read_timeout{15000};  ///< how long to wait for an answer
  /// The delay of a retryable outcome or a 503 whose answer names none (connection refused).
  std::chrono::milliseconds default_retry_after{1000};
  std::string ca_cert_path;  ///< PEM bundle for https; empty: the system's certificates
};

/// The client settings of switchboard's `twilio` section (credentials from TWILIO_ACCOUNT_SID
/// and TWILIO_AUTH_TOKEN).
client_options client_options_for(const twilio_config& twilio);

/// Typed Twilio REST calls over kept-alive connections, one per product host. Safe to share
/// between threads, but calls to one product queue behind each other on its connection: give
/// each writer thread its own client for parallel calls. All calls BLOCK (see above).
class client final : public ports::twilio::twilio_api {
public:
  /// Throws std::invalid_argument naming the missing setting when the account SID or token is
  /// neither given nor in the environment, or a URL is not http(s)://host[:port][/prefix].
  explicit client(client_options options = {});
  ~client() override;
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  const client_options& options() const noexcept;

  // --- Sync (`document`, `map`: a SID or a unique name) -------------------------------------

  call_result create_document(const std::string& service_sid,
                              const std::optional<std::string>& unique_name,
                              const boost::json::value& data,
                              std::optional<std::chrono::seconds> ttl = std::nullopt) override;
  call_result fetch_document(const std::string& service_sid, const std::string& document) override;
  /// With `if_match`, Twilio applies the update only at that revision (else conflict 412/54103).
  call_result update_document(const std::string& service_sid, const std::string& document,
                              const boost::json::value& data,
                              const std::optional<std::string>& if_match = std::nullopt,
                              std::optional<std::chrono::seconds> ttl = std::nullopt) override;
  call_result delete_document(const std::string& service_sid, const std::string& document,
                              const std::optional<std::string>& if_match = std::nullopt) override;

  call_result create_map(const std::string& service_sid, const std::string& unique_name) override;
  /// Conflict 409/54208 if the key exists: update it instead.
  call_result create_map_item(const std::string& service_sid, const std::string& map,
                              const std::string& key, const boost::json::value& data,
                              std::optional<std::chrono::seconds> ttl = std::nullopt) override;
  call_result fetch_map_item(const std::string& service_sid, const std::string& map,
                             const std::string& key) override;
  call_result update_map_item(const std::string& service_sid, const std::string& map,
                              const std::string& key, const boost::json::value& data,
                              const std::optional<std::string>& if_match = std::nullopt,
                              std::optional<std::chrono::seconds> ttl = std::nullopt) override;
  call_result delete_map_item(const std::string& service_sid, const std::string& map,
                              const std::string& key,
                              const std::optional<std::string>& if_match = std::nullopt) override;

  // --- Conversations (`conversation`: a CH SID or a unique name) -----------------------------

  call_result create_conversation(const conversation_fields& fields) override;
  call_result fetch_conversation(const std::string& conversation) override;
  call_result update_conversation_state(const std::string& conversation,
                                        conversation_state state) override;
  /// An SMS participant: the customer's `address` reached through our `proxy_address`.
  /// Conflict 409/50416 while another open conversation holds the same pair.
  call_result add_sms_participant(
      const std::string& conversation, const std::string& address, const std::string& proxy_address,
      const std::optional<boost::json::value>& attributes = std::nullopt) override;
  call_result send_message(const std::string& conversation, const message_fields& fields) override;
  /// One page of messages; follow `body.meta.next_page_url` with fetch_page.
  call_result list_messages(const std::string& conversation,
                            const message_listing& listing = {}) override;
  /// The conversations an SMS address takes part in (GET /v1/ParticipantConversations).
  call_result participant_conversations(const std::string& address) override;
  call_result create_conversation_webhook(const std::string& conversation,
                                          const conversation_webhook_fields& fields) override;

  // --- Messages (api.twilio.com/2010-04-01) --------------------------------------------------

  call_result send_sms(const sms_fields& fields) override;
  call_result list_sms(const sms_listing& listing) override;

  // --- TaskRouter ----------------------------------------------------------------------------

  call_result fetch_worker(const std::string& workspace_sid,
                           const std::string& worker_sid) override;
  /// Replaces the worker's whole attribute object. Conflict 412/20412 on a stale `if_match`.
  call_result update_worker_attributes(
      const std::string& workspace_sid, const std::string& worker_sid,
      const boost::json::value& attributes,
      const std::optional<std::string>& if_match = std::nullopt) override;

  // --- paging --------------------------------------------------------------------------------

  /// GET a `next_page_url` / `previous_page_url` from a list answer. Twilio's host names
  /// (https://conversations.twilio.com/v1/...) map to the configured product URL; a URL under
  /// a configured product URL is used as is; a path of the 2010-04-01 API
  /// (`next_page_uri`: /2010-04-01/...) goes to the api product. Terminal if it is none of these.
  call_result fetch_page(const std::string& page_url) override;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace switchboard::adapters::twilio
